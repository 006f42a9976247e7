"""PostgreSQL session settings our connections open with (catalog_explorer/settings.py): the
planner's `random_page_cost` (DB_RANDOM_PAGE_COST), next to the prepared statements'
`plan_cache_mode`. Each case reads the settings in a fresh process, as a server starts."""

import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.db import connection

pytestmark = [pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL session settings"),
              pytest.mark.django_db]

SHOW = ("import django; django.setup(); from django.db import connection; c = connection.cursor(); "
        "c.execute('SHOW random_page_cost'); a = c.fetchone()[0]; c.execute('SHOW plan_cache_mode'); "
        "print(a, c.fetchone()[0])")


def _server_settings(url_suffix="", **env):
    base = connection.settings_dict
    url = f"postgres://{base['USER']}@{base['HOST'] or '127.0.0.1'}:{base['PORT'] or 5432}/postgres{url_suffix}"
    inherited = {k: v for k, v in os.environ.items() if k not in ("DB_RANDOM_PAGE_COST", "DB_PREPARED_STATEMENTS")}
    env = {**inherited, "DJANGO_SETTINGS_MODULE": "catalog_explorer.settings", "DATABASE_URL": url, **env}
    result = subprocess.run([sys.executable, "-c", SHOW], env=env, capture_output=True, text=True,
                            cwd=django_settings.BASE_DIR)
    return result.stdout.split(), result.stderr


def test_connections_plan_with_the_lower_random_page_cost_by_default():
    shown, stderr = _server_settings()
    assert shown == ["1.1", "force_generic_plan"], stderr


def test_the_page_cost_is_a_setting_and_empty_leaves_the_servers_own():
    with connection.cursor() as cursor:
        cursor.execute("SELECT boot_val FROM pg_settings WHERE name = 'random_page_cost'")
        servers_default = cursor.fetchone()[0]
    assert _server_settings(DB_RANDOM_PAGE_COST="")[0] == [servers_default, "force_generic_plan"]
    assert _server_settings(DB_RANDOM_PAGE_COST="2.5")[0] == ["2.5", "force_generic_plan"]
    # Without prepared statements (a pooler in transaction mode) the page cost is still sent.
    assert _server_settings(DB_PREPARED_STATEMENTS="false")[0] == ["1.1", "auto"]


def test_options_in_the_database_url_come_last_and_win():
    shown, stderr = _server_settings("?options=-c%20random_page_cost%3D3")
    assert shown == ["3", "force_generic_plan"], stderr


@pytest.mark.parametrize("value", ["fast", "-1", "nan", "inf"])
def test_a_page_cost_that_is_no_number_stops_the_start_with_its_name(value):
    shown, stderr = _server_settings(DB_RANDOM_PAGE_COST=value)
    assert shown == [] and "DB_RANDOM_PAGE_COST must be a number" in stderr
