"""The pages in a real browser (Debian's Chromium through Playwright): the htmx edits, the
kebab menu and the delete dialog, each checked by what the page then shows."""

import os
import shutil

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not shutil.which("chromium") and not os.path.exists("/usr/bin/chromium"), reason="no Chromium"),
]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def chromium():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live_server, world):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Console errors other than the 400 a refused form answers with on purpose (CSP violations
    # would show here).
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and "status of 400" not in msg.text else None)
    page.errors = errors
    page.base = live_server.url
    yield page
    context.close()


def login(page, username, password):
    page.goto(page.base + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(page.base + "/")


def test_a_field_chosen_as_a_popover_opens_keeps_the_focus(page, world, transactional_db):
    """The popover focuses its first field on the toggle event, which comes a moment after it
    opened; someone already in another of its fields (quick, or a password manager) stays there.
    It used to move them, and what they typed next went into the first field."""
    login(page, "alice", "alice-pass-123")
    page.goto(page.base + "/explore/prod/ml_team/iris/")
    page.evaluate("""() => { document.querySelector('#aliases details').open = true;
                             document.querySelector('#alias_version').focus(); }""")
    page.wait_for_timeout(100)  # the toggle event has come
    assert page.evaluate("() => document.activeElement.id") == "alias_version"
    # Opened with nothing focused inside, it still goes to its first field.
    page.keyboard.press("Escape")
    page.click("#aliases summary")
    page.wait_for_function("() => document.activeElement.id === 'alias_alias'")


def test_owner_edits_tags_aliases_and_deletes_a_version(page, world, transactional_db):
    sync_api = pytest.importorskip("playwright.sync_api")
    login(page, "alice", "alice-pass-123")
    # Browse to the model through the tree.
    page.click("nav.sidebar >> text=prod")
    page.wait_for_url(page.base + "/explore/prod/")
    page.click("nav.sidebar >> text=ml_team")
    page.click("nav.sidebar >> text=iris")
    page.wait_for_selector("h1:has-text('iris')")
    assert "prod.ml_team.iris" in page.inner_text(".page-head")

    # Description: edit in place (htmx swaps the form in and the rendered Markdown back).
    url_before = page.url
    page.click("#description >> text=Edit")
    page.wait_for_selector("#description textarea")
    page.fill("#description textarea", "Now with **bold** text")
    page.click("#description >> text=Save description")
    page.wait_for_selector("#description strong:has-text('bold')")
    assert page.url == url_before  # no navigation happened

    # Tag: add through the popover; the tag row is swapped in place.
    page.click("#tags summary")
    page.fill("#tag_key", "stage")
    page.fill("#tag_value", "qa")
    page.click("#tags >> text=Set tag")
    page.wait_for_selector("#tags .chip-key:has-text('stage')")
    # A bad key shows the error next to the field, in place.
    page.click("#tags summary")
    page.fill("#tag_key", "../x")
    page.click("#tags >> text=Set tag")
    page.wait_for_selector("#tags .field-error")
    assert "must not look like a path" in page.inner_text("#tags .field-error")

    # Alias: move Champion from v2 to v1.
    page.goto(page.base + "/explore/prod/ml_team/iris/")
    page.click("#aliases summary")
    page.fill("#alias_alias", "Champion")
    page.fill("#alias_version", "1")
    page.click("#aliases .popover-body button[type=submit]")
    page.wait_for_selector("#aliases .chip-value:has-text('v1')")
    row = page.locator("#versions tr", has_text="Version 1")
    assert "@Champion" in row.inner_text()

    # Remove the Challenger-less alias list entry again: × on the chip, swapped in place.
    page.click("#aliases summary")
    page.fill("#alias_alias", "Shadow")
    page.fill("#alias_version", "1")
    page.click("#aliases .popover-body button[type=submit]")
    page.wait_for_selector("#aliases .chip-key:has-text('@Shadow')")
    assert "7 of 10 left" not in page.inner_text("#aliases")  # Champion + Shadow → 8 left
    assert "8 of 10 left" in page.inner_text("#aliases")
    # A version that does not exist: the error under Version, the form open on that field.
    page.click("#aliases summary")
    page.fill("#alias_alias", "Ghost")
    page.fill("#alias_version", "99")
    page.click("#aliases .popover-body button[type=submit]")
    page.wait_for_selector("#alias_version-error")
    assert "version=99) not found" in page.inner_text("#alias_version-error")
    assert page.locator("#alias_alias-error").count() == 0
    sync_api.expect(page.locator("#alias_version")).to_be_focused()
    assert page.locator("#aliases .chip-key:has-text('@Ghost')").count() == 0
    page.keyboard.press("Escape")
    page.click("button[aria-label='Remove alias Shadow']")
    page.wait_for_selector("#aliases .chip-key:has-text('@Shadow')", state="detached")

    # Grant a privilege on the Permissions tab (in place), then see it in the table.
    page.click(".tabs >> text=Permissions")
    page.wait_for_selector("#grants")
    page.fill("#grant_principal", "tom")
    page.select_option("#grant_privilege", "APPLY TAG")
    page.click("#main >> button:has-text('Grant')")
    page.wait_for_selector("button[aria-label='Revoke APPLY TAG from tom']")  # a direct grant row
    # An unknown principal: the error appears next to the field.
    page.fill("#grant_principal", "nobody-here")
    page.click("#main >> button:has-text('Grant')")
    page.wait_for_selector("#grant_principal-error")
    assert "No user or group is named" in page.inner_text("#grant_principal-error")

    # Delete version 2 through the kebab menu and the dialog; the name must be typed.
    page.goto(page.base + "/explore/prod/ml_team/iris/versions/2/")
    page.click(".kebab summary")
    page.click("text=Delete version…")
    dialog = page.locator("#delete-dialog")
    dialog.wait_for(state="visible")
    submit = dialog.locator("button[type=submit]")
    assert submit.is_disabled()
    dialog.locator("input[name=confirm_name]").fill("prod.ml_team.iris/2")
    assert submit.is_enabled()
    submit.click()
    page.wait_for_url(page.base + "/explore/prod/ml_team/iris/")
    assert "1 version" in page.inner_text(".page-head")
    assert page.locator("#versions tr", has_text="Version 2").count() == 0
    assert not page.errors, page.errors


def test_reader_sees_no_edit_controls_and_tabs_work(page, world, transactional_db):
    login(page, "eve", "eve-pass-123")
    page.goto(page.base + "/explore/prod/ml_team/iris/")
    assert page.locator("text=+ set alias").count() == 0
    assert page.locator(".kebab").count() == 0
    page.click(".tabs >> text=Activity")
    page.wait_for_selector("#activity")
    assert "tab=activity" in page.url
    page.click(".tabs >> text=Permissions")
    page.wait_for_selector("#grants")
    assert "eve" in page.inner_text("#grants")
    assert not page.errors, page.errors
