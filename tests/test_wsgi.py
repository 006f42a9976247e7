"""The WSGI application gunicorn serves (`catalog_explorer.wsgi`: Django inside the read
cache's layer, `api.read_cache.ReadCacheWSGI`), on every database: the API and the pages answer
through it as through Django alone. What the layer keeps and when it answers is
tests/test_api_read_cache.py's (PostgreSQL)."""

import pytest
from django.core.wsgi import get_wsgi_application
from rest_framework.authtoken.models import Token

from registry.api.read_cache import ReadCacheWSGI
from tests import wsgi_support


def _call(app, path, query=None, **environ):
    status, headers, result = wsgi_support.call(app, path, query, **environ)
    return status, headers, b"".join(result)


@pytest.mark.django_db(transaction=True)
def test_the_api_and_the_pages_answer_through_the_layer(world):
    app = ReadCacheWSGI(get_wsgi_application())
    token = Token.objects.get_or_create(user=world.eve)[0].key
    read = ("/api/2.0/mlflow/registered-models/alias", {"name": "prod.ml_team.iris", "alias": "champion"})
    for _ in range(3):  # asked again and again: the same answer, however it is found
        status, headers, body = _call(app, *read, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert status == "200 OK", body
        assert headers["Content-Type"] == "application/json" and b'"aliases":["Champion"]' in body.replace(b" ", b"")
    status, _, body = _call(app, *read, HTTP_AUTHORIZATION="Bearer not-a-token")
    assert status == "401 Unauthorized", body
    status, headers, _ = _call(app, "/")
    assert status == "302 Found" and "/login" in headers["Location"]
