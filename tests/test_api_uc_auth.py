"""Who is calling: Bearer tokens and HTTP basic on /api/, never the session cookie; the token
command; the Host header; the published OpenAPI schema; JSON answers for unknown routes."""

import base64
import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIClient

from registry.models import Catalog

from .test_api_uc_support import BASE, assert_error, uc  # noqa: F401


def _basic(username, password):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_it_authenticates_a_bearer_token(world):
    token = Token.objects.create(user=world.alice)
    response = APIClient().get(BASE + "catalogs", HTTP_AUTHORIZATION=f"Bearer {token.key}")
    assert response.status_code == 200
    assert [c["name"] for c in response.json()["catalogs"]] == ["prod"]


def test_a_token_gives_its_user_with_the_rest_loaded_on_demand(world):
    """The token's query reads a few of the user's columns (BearerTokenAuthentication); the
    others still hold the stored values when something asks for them."""
    from registry.api.auth import BearerTokenAuthentication

    for stored in (world.alice, world.admin):
        user, _ = BearerTokenAuthentication().authenticate_credentials(Token.objects.create(user=stored).key)
        assert (user.pk, user.username, user.is_superuser, user.is_active) == (
            stored.pk, stored.username, stored.username == "admin", True)
        assert user.email == f"{stored.username}@example.com" and user.check_password(f"{stored.username}-pass-123")
    world.alice.is_active = False
    world.alice.save()
    with pytest.raises(AuthenticationFailed):
        BearerTokenAuthentication().authenticate_credentials(Token.objects.get(user=world.alice).key)


def test_it_authenticates_http_basic(world):
    response = APIClient().get(BASE + "models/prod.ml_team.iris", HTTP_AUTHORIZATION=_basic("eve", "eve-pass-123"))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer not-a-token",
        "Bearer ",
        "Bearer a b",
        _basic("eve", "wrong"),
        _basic("nobody", "x"),
        "Basic !!!notbase64",
        "Token abc",
    ],
)
def test_it_answers_401_unauthenticated_without_valid_credentials(world, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = APIClient().get(BASE + "catalogs/prod", **extra)
    assert_error(response, 401, "UNAUTHENTICATED")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_it_refuses_the_token_of_an_inactive_user(world):
    token = Token.objects.create(user=world.alice)
    world.alice.is_active = False
    world.alice.save()
    assert_error(APIClient().get(BASE + "catalogs", HTTP_AUTHORIZATION=f"Bearer {token.key}"), 401, "UNAUTHENTICATED")


def test_it_ignores_the_session_cookie_on_the_api(world):
    browser = Client(enforce_csrf_checks=True)
    assert browser.login(username="admin", password="admin-pass-123")
    assert_error(browser.get(BASE + "catalogs"), 401, "UNAUTHENTICATED")
    response = browser.post(BASE + "catalogs", {"name": "from_a_cookie"}, content_type="application/json")
    assert response.status_code in (401, 403)
    assert not Catalog.objects.filter(name="from_a_cookie").exists()


def test_it_answers_401_before_looking_at_the_body(world):
    response = APIClient().post(BASE + "catalogs", "garbage", content_type="text/plain")
    assert_error(response, 401, "UNAUTHENTICATED")


# --- create_api_token -----------------------------------------------------------------------
def _command(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_token", *args, stdout=out, stderr=err)
    return out.getvalue().strip()


def test_the_token_command_prints_a_token_that_authenticates(world):
    key = _command("alice")
    assert key == Token.objects.get(user=world.alice).key
    assert APIClient().get(BASE + "catalogs", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    assert _command("alice") == key  # the same token until rotated


def test_the_token_command_rotates_and_the_old_token_stops_working(world):
    old = _command("alice")
    new = _command("alice", "--rotate")
    assert new != old
    assert_error(APIClient().get(BASE + "catalogs", HTTP_AUTHORIZATION=f"Bearer {old}"), 401, "UNAUTHENTICATED")
    assert APIClient().get(BASE + "catalogs", HTTP_AUTHORIZATION=f"Bearer {new}").status_code == 200


def test_the_token_command_refuses_unknown_and_inactive_users(world):
    with pytest.raises(CommandError, match="No user"):
        _command("nobody")
    world.oscar.is_active = False
    world.oscar.save()
    with pytest.raises(CommandError, match="inactive"):
        _command("oscar")
    assert not Token.objects.filter(user=world.oscar).exists()


# --- Transport ------------------------------------------------------------------------------
def test_it_answers_400_to_a_foreign_host_header(uc):
    """DNS rebinding (CVE-2025-14279): only ALLOWED_HOSTS are served."""
    response = uc("admin").get("catalogs", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert b"prod" not in response.content


def test_api_answers_skip_the_pages_middleware_but_keep_their_safeguards(uc, client):
    """/api/ goes through API_MIDDLEWARE (registry.middleware.ApiMiddleware): no session
    cookie, no per-page CSP, but a policy that forbids rendering or framing the answer, the
    security headers, and JSON whatever the Accept header asks for (as MLflow's server)."""
    api = uc("admin").client
    for accept in ("text/html", "application/xml", "*/*"):
        response = api.get(BASE + "catalogs/prod", HTTP_ACCEPT=accept)
        assert response.status_code == 200 and response["Content-Type"] == "application/json"
        assert response.json()["name"] == "prod"
        assert response["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert response["X-Frame-Options"] == "DENY" and response["X-Content-Type-Options"] == "nosniff"
        assert "Cookie" not in response.get("Vary", "") and not response.cookies
    page = client.get("/accounts/login/")
    assert "script-src 'self'" in page["Content-Security-Policy"]
    assert page.cookies["csrftoken"]


def test_it_answers_a_json_404_for_unknown_endpoints(uc):
    for path in ("functions", "models/prod.ml_team.iris/versions/1/finalize/x", "catalogs/prod/schemas"):
        assert_error(uc("admin").get(path), 404, "NOT_FOUND", "endpoint")


def test_it_answers_a_json_404_in_mlflow_style_elsewhere_under_api(uc):
    client = uc("admin").client
    for path in ("/api/", "/api/2.0/unknown", "/api/2.1/other-catalog/x", "/api/2.0/mlflow/no-such-thing"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND", path
    response = client.get("/api/<script>x</script>")
    assert b"<script" not in response.content


def test_it_answers_a_json_405_for_a_wrong_method(uc):
    response = uc("admin").client.put(BASE + "catalogs/prod", {"comment": "x"}, format="json")
    assert_error(response, 405, "BAD_REQUEST")
    assert "PATCH" in response.headers["Allow"]


# --- OpenAPI --------------------------------------------------------------------------------
def test_it_publishes_the_openapi_schema(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("catalogs", "catalogs/{name}", "schemas", "schemas/{full_name}", "models", "models/{full_name}",
                 "models/{full_name}/versions", "models/{full_name}/versions/{version}",
                 "permissions/{securable_type}/{full_name}"):
        assert f"/api/2.1/unity-catalog/{path}" in paths


def test_the_uc_part_of_the_openapi_schema_is_valid_and_complete(db):
    """Every UC operation is typed (no "unable to guess serializer"), and the whole document
    is valid OpenAPI. `manage.py spectacular --validate --fail-on-warn` checks all APIs."""
    from django.urls import include, path
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.validation import validate_schema

    GENERATOR_STATS.reset()
    patterns = [path("api/2.1/unity-catalog/", include("registry.api.uc.urls"))]
    schema = SchemaGenerator(patterns=patterns).get_schema(request=None, public=True)
    assert not GENERATOR_STATS._warn_cache and not GENERATOR_STATS._error_cache, (
        dict(GENERATOR_STATS._warn_cache), dict(GENERATOR_STATS._error_cache),
    )
    validate_schema(schema)
    operations = [op for item in schema["paths"].values() for op in item.values()]
    assert len(operations) == 21
    assert all(op["responses"].get("401") for op in operations)


# --- Repeated failed logins -----------------------------------------------------------------
def test_it_locks_a_username_out_after_repeated_wrong_passwords(world, lockout):
    client = APIClient()
    for _ in range(3):
        assert_error(client.get(BASE + "catalogs", HTTP_AUTHORIZATION=_basic("eve", "guess")), 401, "UNAUTHENTICATED")
    response = client.get(BASE + "catalogs", HTTP_AUTHORIZATION=_basic("eve", "eve-pass-123"))
    assert_error(response, 429, "REQUEST_LIMIT_EXCEEDED", "too many failed logins")
    assert response.headers["Retry-After"] == "60"
    # Other usernames still log in; a token still works for eve.
    assert client.get(BASE + "catalogs", HTTP_AUTHORIZATION=_basic("alice", "alice-pass-123")).status_code == 200
    token = Token.objects.create(user=world.eve)
    assert client.get(BASE + "catalogs", HTTP_AUTHORIZATION=f"Bearer {token.key}").status_code == 200


def test_it_counts_failures_per_username_from_any_address(world, lockout):
    for i in range(3):
        APIClient().get(BASE + "catalogs", HTTP_AUTHORIZATION=_basic("eve", "guess"), REMOTE_ADDR=f"10.0.0.{i}")
    response = APIClient().get(BASE + "catalogs", HTTP_AUTHORIZATION=_basic("eve", "eve-pass-123"),
                               REMOTE_ADDR="10.0.0.99")
    assert_error(response, 429, "REQUEST_LIMIT_EXCEEDED")
    assert APIClient().get(BASE + "catalogs", HTTP_AUTHORIZATION=_basic("alice", "alice-pass-123"),
                           REMOTE_ADDR="10.0.0.99").status_code == 200


def test_it_locks_an_address_out_after_wrong_passwords_for_many_usernames(world, lockout):
    for name in ("a1", "a2", "a3", "a4", "a5"):
        APIClient().get(BASE + "catalogs", HTTP_AUTHORIZATION=_basic(name, "guess"), REMOTE_ADDR="10.9.9.9")
    response = APIClient().get(BASE + "catalogs", HTTP_AUTHORIZATION=_basic("alice", "alice-pass-123"),
                               REMOTE_ADDR="10.9.9.9")
    assert_error(response, 429, "REQUEST_LIMIT_EXCEEDED")
    assert APIClient().get(BASE + "catalogs", HTTP_AUTHORIZATION=_basic("alice", "alice-pass-123"),
                           REMOTE_ADDR="10.9.9.8").status_code == 200


def test_a_successful_login_clears_the_username_count(world, lockout):
    client = APIClient()
    for _ in range(2):
        client.get(BASE + "catalogs", HTTP_AUTHORIZATION=_basic("eve", "guess"), REMOTE_ADDR="10.0.0.1")
    assert client.get(BASE + "catalogs", HTTP_AUTHORIZATION=_basic("eve", "eve-pass-123"),
                      REMOTE_ADDR="10.0.0.2").status_code == 200
    client.get(BASE + "catalogs", HTTP_AUTHORIZATION=_basic("eve", "guess"), REMOTE_ADDR="10.0.0.3")
    assert client.get(BASE + "catalogs", HTTP_AUTHORIZATION=_basic("eve", "eve-pass-123"),
                      REMOTE_ADDR="10.0.0.4").status_code == 200


# --- Every API route decides who may call it ------------------------------------------------
PUBLIC_API_ROUTES = {"api/schema/"}  # the OpenAPI document: routes, never data


def _api_routes():
    """Every URL pattern under /api/, with sample values for its parameters."""
    import re

    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns, prefix):
        for p in patterns:
            route = str(p.pattern)
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + route)
            elif isinstance(p, URLPattern):
                yield prefix + route

    samples = {"int": "1", "path": "a/b", "str": "x", "slug": "x", "uuid": "00000000-0000-0000-0000-000000000000"}
    for route in walk(get_resolver().url_patterns, ""):
        if not route.startswith("api/"):
            continue
        sample = re.sub(r"<(?:(\w+):)?\w+>", lambda m: samples.get(m.group(1) or "str", "x"), route)
        yield route, "/" + sample.replace("^", "").replace(".*$", "anything").replace("$", "")


@pytest.mark.django_db
def test_every_api_route_refuses_anonymous_callers():
    routes = list(_api_routes())
    assert len(routes) > 20
    client = APIClient()
    for route, url in routes:
        if route in PUBLIC_API_ROUTES:
            continue
        for method in ("get", "post", "patch", "put", "delete"):
            response = getattr(client, method)(url)
            assert response.status_code == 401, (method, route, url, response.status_code)
