"""What the MLflow API tests share: calling /api/2.0/mlflow/ as a persona (HTTP basic, as
MLFLOW_TRACKING_USERNAME/PASSWORD does), and an artifact store of the test's own."""

import base64
import json

import pytest
from django.test import Client

PREFIX = "/api/2.0/mlflow/"


class Api:
    def __init__(self, username=None):
        self.client = Client()
        self.headers = {}
        if username:
            token = base64.b64encode(f"{username}:{username}-pass-123".encode()).decode()
            self.headers["HTTP_AUTHORIZATION"] = f"Basic {token}"

    def _url(self, path):
        return path if path.startswith("/") else PREFIX + path

    def get(self, path, params=None):
        return self.client.get(self._url(path), params or {}, **self.headers)

    def _send(self, method, path, body, content_type):
        data = json.dumps(body) if content_type == "application/json" and not isinstance(body, (str, bytes)) else body
        return getattr(self.client, method)(self._url(path), data, content_type=content_type, **self.headers)

    def post(self, path, body=None, content_type="application/json"):
        return self._send("post", path, body or {}, content_type)

    def patch(self, path, body=None, content_type="application/json"):
        return self._send("patch", path, body or {}, content_type)

    def delete(self, path, body=None, content_type="application/json"):
        return self._send("delete", path, body or {}, content_type)

    def put_bytes(self, path, data, content_type="application/octet-stream"):
        return self.client.put(self._url(path), data, content_type=content_type, **self.headers)


def as_user(username):
    return Api(username)


def error(response, status, code):
    """Assert an MLflow error response and return its message."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert body["error_code"] == code, body
    return body["message"]


@pytest.fixture
def artifact_root(settings, tmp_path):
    root = tmp_path / "artifacts"
    root.mkdir()
    storages = dict(settings.STORAGES)
    storages["artifacts"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(root), "base_url": "/unused/", "allow_overwrite": True},
    }
    settings.STORAGES = storages
    settings.ARTIFACT_ROOT = root
    return root
