"""Helpers for the Unity Catalog API tests: a client per persona, authenticated the way real
clients are (a Bearer token), and assertions on the UC error shape."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

BASE = "/api/2.1/unity-catalog/"


class UC:
    def __init__(self, user):
        self.user = user
        self.client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")

    def get(self, path, params=None, **extra):
        return self.client.get(BASE + path, params or {}, **extra)

    def post(self, path, body=None, **extra):
        return self.client.post(BASE + path, body if body is not None else {}, format="json", **extra)

    def patch(self, path, body=None, **extra):
        return self.client.patch(BASE + path, body if body is not None else {}, format="json", **extra)

    def delete(self, path, **extra):
        return self.client.delete(BASE + path, **extra)


@pytest.fixture
def uc(world):
    """`uc("eve").get("models/prod.ml_team.iris")`"""
    return lambda name: UC(getattr(world, name))


def assert_error(response, status, code, *words):
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"error_code", "message"}, body
    assert body["error_code"] == code, body
    for word in words:
        assert word.lower() in body["message"].lower(), body
    return body["message"]
