"""XSS through descriptions, CSRF, security headers, and a CSP-clean markup (no inline script,
style or event handler anywhere in our pages)."""

import re
from html.parser import HTMLParser

import pytest
from django.test import Client

from registry import services

IRIS = "/explore/prod/ml_team/iris/"
PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "<svg><script>alert(1)</script></svg>",
    '<a href="data:text/html,<script>alert(1)</script>">d</a>',
    "[d](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '<iframe src="https://evil.example/"></iframe>',
    "<p onmouseover=alert(1)>hover</p>",
    "![i](javascript:alert(1))",
]


class _Tags(HTMLParser):
    """Every real element and attribute of a page (escaped text is not markup and is ignored)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def assert_no_active_content(body):
    parser = _Tags()
    parser.feed(body)
    for tag, attrs in parser.tags:
        if tag == "script":
            assert (attrs.get("src") or "").startswith("/static/"), attrs
        assert tag not in ("iframe", "svg", "object", "embed"), tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in ("href", "src", "action", "formaction"):
                url = "".join((value or "").split()).lower()
                assert not url.startswith(("javascript:", "data:", "vbscript:")), (tag, name, value)
    assert "<script>" not in body.lower()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_descriptions_cannot_run_script(client, world, payload):
    services.model_update(actor=world.alice, model=world.iris, description=payload)
    services.version_update(actor=world.alice, version=world.v1, description=payload)
    services.schema_update(actor=world.admin, schema=world.ml_team, description=payload)
    client.force_login(world.alice)
    for url in (IRIS, "/explore/prod/ml_team/iris/versions/1/", "/explore/prod/ml_team/", "/search/?q=iris"):
        response = client.get(url)
        assert response.status_code == 200
        assert_no_active_content(response.content.decode())
    world.iris.refresh_from_db()
    assert world.iris.description == payload  # stored exactly as typed


def test_the_description_editor_escapes_the_stored_text(client, world):
    services.model_update(actor=world.alice, model=world.iris, description="</textarea><script>alert(1)</script>")
    client.force_login(world.alice)
    body = client.get(IRIS + "?edit=description").content.decode()
    assert_no_active_content(body)
    assert "&lt;/textarea&gt;&lt;script&gt;" in body


def test_names_tags_and_aliases_are_escaped(client, world):
    services.model_tag_set(actor=world.alice, model=world.iris, key="k", value='"><script>alert(1)</script>')
    client.force_login(world.alice)
    body = client.get(IRIS).content.decode()
    assert_no_active_content(body)
    assert "&lt;script&gt;" in body


def test_csrf_is_enforced_on_every_form(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.alice)
    response = client.post("/edit/model/prod/ml_team/iris/description/", {"description": "csrf"})
    assert response.status_code == 403
    assert b"CSRF" in response.content
    world.iris.refresh_from_db()
    assert world.iris.description == "Iris *classifier*"
    # With the token from the page, the same post works.
    page = client.get(IRIS).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post("/edit/model/prod/ml_team/iris/description/", {"description": "ok", "csrfmiddlewaretoken": token})
    assert response.status_code == 302


def test_login_is_csrf_protected(world):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "alice", "password": "alice-pass-123"})
    assert response.status_code == 403


def test_pages_send_security_headers(client, world):
    client.force_login(world.alice)
    for url in ("/", IRIS, "/accounts/login/", "/explore/nope/"):
        response = client.get(url)
        csp = response["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("url", [
    "/", "/explore/prod/", "/explore/prod/?tab=permissions", "/explore/prod/ml_team/", IRIS,
    IRIS + "?tab=permissions", IRIS + "?tab=activity", IRIS + "?edit=description&confirm=delete",
    "/explore/prod/ml_team/iris/versions/2/", "/search/?q=iris", "/explore/nope/",
])
def test_markup_needs_no_inline_script_or_style(client, world, url):
    client.force_login(world.alice)
    body = client.get(url).content.decode()
    assert not re.search(r"\sstyle\s*=", body)
    assert not re.search(r"\son[a-z]+\s*=", body)
    assert "hx-on" not in body
    scripts = re.findall(r"<script[^>]*>", body)
    assert scripts and all('src="/static/' in tag for tag in scripts)
    assert 'name="htmx-config"' in body and '"includeIndicatorStyles": false' in body


def test_the_login_page_is_csp_clean(client, world):
    body = client.get("/accounts/login/").content.decode()
    assert not re.search(r"\sstyle\s*=", body) and not re.search(r"\son[a-z]+\s*=", body)
