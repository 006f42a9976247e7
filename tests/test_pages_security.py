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


def test_the_versions_table_escapes_what_a_version_carries(client, world):
    """The model page's rows are built in Python (`version_rows`), not by the template: what a
    version carries (a failure's message, its source, its run id) is text there too, a long run
    id is cut to 10 characters, and a version without a creator shows a dash."""
    from registry.models import ModelVersion

    ModelVersion.objects.filter(pk=world.v1.pk).update(
        status=ModelVersion.FAILED, status_message='<img src=x onerror=alert(1)> & "q"',
        source='runs:/x"><script>alert(1)</script>', run_id="<b>0123456789abcdef", created_by=None)
    client.force_login(world.alice)
    body = client.get(IRIS).content.decode()
    assert_no_active_content(body)
    row = re.search(r'<tr>\s*<td class="nowrap"><a class="strong" href="[^"]*/versions/1/">Version 1</a>.*?</tr>', body,
                    re.DOTALL)
    assert row, "version 1's row"
    row = row.group(0)
    assert '<span class="status-message">&lt;img src=x onerror=alert(1)&gt; &amp; &quot;q&quot;</span>' in row
    assert 'title="runs:/x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in row
    assert ">run &lt;b&gt;012345…<" in row  # 9 characters and the ellipsis, as truncatechars:10
    assert re.search(r"<td>\s*—\s*</td>", row)  # no creator


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


def _login(username, password, address="127.0.0.1"):
    client = Client(REMOTE_ADDR=address)
    response = client.post("/accounts/login/", {"username": username, "password": password})
    return response, "_auth_user_id" in client.session


def test_repeated_failed_logins_lock_the_login_form(world, lockout):
    """BAD_INPUTS.md: repeated failed logins are throttled on the page as on the API (one guard)."""
    for _ in range(3):
        response, logged_in = _login("eve", "guess")
        assert response.status_code == 200 and not logged_in
    response, logged_in = _login("eve", "eve-pass-123", address="10.0.0.7")  # the right password, elsewhere
    assert response.status_code == 429 and not logged_in
    assert "Too many failed logins" in response.content.decode()
    # the API's basic auth for eve is locked too; other usernames still log in
    import base64

    basic = "Basic " + base64.b64encode(b"eve:eve-pass-123").decode()
    assert Client().get("/api/2.1/unity-catalog/catalogs", HTTP_AUTHORIZATION=basic).status_code == 429
    response, logged_in = _login("alice", "alice-pass-123")
    assert response.status_code == 302 and logged_in


def test_an_address_guessing_many_usernames_is_locked_out(world, lockout):
    for name in ("a1", "a2", "a3", "a4", "a5"):
        assert _login(name, "guess", address="10.9.9.9")[0].status_code == 200
    response, logged_in = _login("alice", "alice-pass-123", address="10.9.9.9")
    assert response.status_code == 429 and not logged_in
    assert _login("alice", "alice-pass-123", address="10.9.9.8")[1]


def test_a_successful_login_clears_the_username_count(world, lockout):
    for _ in range(2):
        _login("eve", "guess")
    assert _login("eve", "eve-pass-123")[1]
    for _ in range(2):
        _login("eve", "guess")
    assert _login("eve", "eve-pass-123")[1]  # 4 failures in all, never 3 in a row


@pytest.mark.parametrize("url", ["/accounts/signup/", "/accounts/register/", "/signup/", "/api/2.0/mlflow/users/create",
                                 "/api/2.0/mlflow/users/update-password", "/ajax-api/2.0/mlflow/users/create",
                                 "/admin/auth/user/add/"])
def test_no_sign_up_endpoint_is_open_to_anonymous_callers(db, url):
    """BAD_INPUTS.md (CVE-2023-6014): creating a user needs a superuser; nothing creates one anonymously."""
    from django.contrib.auth.models import User

    body = {"username": "mallory", "password": "a long password 123", "password1": "a long password 123",
            "password2": "a long password 123"}
    for response in (Client().post(url, body), Client().post(url, body, content_type="application/json")):
        assert response.status_code in (302, 401, 403, 404, 405), (url, response.status_code)
        if response.status_code == 302:
            assert "/login/" in response["Location"], (url, response["Location"])
    assert not User.objects.filter(username="mallory").exists()


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


def test_a_description_in_a_list_is_its_plain_text_escaped_kept_or_computed(client, world):
    # `plain` keeps the line of each text up to PLAIN_KEPT_MAX characters: the same line as for a
    # longer text (computed each time), markup gone and what remains escaped by the page.
    from registry.templatetags.registry_tags import PLAIN_KEPT_MAX, plain

    text = "**Churn** model &amp; `code`\n\n<b>not bold</b> [docs](javascript:alert(1))"
    line = "Churn model & code <b>not bold</b> [docs](javascript:alert(1))"  # not a link: no such scheme
    assert plain(text) == line and plain(text) == line  # computed, then kept
    padding = "\n\n" + "x " * PLAIN_KEPT_MAX
    assert len(text + padding) > PLAIN_KEPT_MAX and plain(text + padding).startswith(line + " x x")
    services.model_update(actor=world.alice, model=world.iris, description=text)
    client.force_login(world.alice)
    body = client.get("/explore/prod/ml_team/").content.decode()
    assert "Churn model &amp; code &lt;b&gt;not bold&lt;/b&gt; [docs](javascript:alert(1))" in body
    assert_no_active_content(body)
