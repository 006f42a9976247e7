"""Permission queries are prepared on PostgreSQL (registry/db.py): the plan is reused, never a
result. A revoked grant counts at the very next request on the same connection, after the
statement has switched to its generic plan. The MLflow API's reads run SQL compiled once
(`db.compiled_rows`): the SQL is reused, never a result, and one user's id never answers for
another's."""

import re

import pytest
from django.db import connection

from registry import db, docs, selectors, services
from registry.errors import NotFound
from registry.models import RegisteredModel, Schema
from tests.plan_support import rows_read

IRIS = "prod.ml_team.iris"


def _names(qs):
    return {m.full_name for m in qs}


def test_a_revoked_grant_counts_at_once_with_a_reused_plan(world):
    for _ in range(8):  # past psycopg's preparation and PostgreSQL's five custom plans
        assert selectors.model_get(world.eve, "prod.ml_team.iris").cap_execute
        assert "prod.ml_team.iris" in _names(selectors.models(world.eve))
    services.grants_change(actor=world.alice, obj=world.iris, changes=[{"principal": "eve", "remove": ["EXECUTE"]}])
    with pytest.raises(NotFound):
        selectors.model_get(world.eve, "prod.ml_team.iris")
    assert "prod.ml_team.iris" not in _names(selectors.models(world.eve))
    assert not selectors.registry_versions(world.eve).filter(model=world.iris).exists()


def test_a_new_grant_counts_at_once_with_a_reused_plan(world):
    other = RegisteredModel.objects.filter(schema=Schema.objects.get(name="ml_team", catalog__name="prod")).exclude(
        pk=world.iris.pk
    ).first()
    for _ in range(8):
        assert other.full_name not in _names(selectors.models(world.eve))
    services.grants_change(actor=world.admin, obj=other, changes=[{"principal": "eve", "add": ["EXECUTE"]}])
    assert other.full_name in _names(selectors.models(world.eve))
    assert selectors.model_get(world.eve, other.full_name).cap_execute


def test_compiled_mlflow_reads_answer_each_user_and_see_a_revoke_at_once(world):
    for _ in range(8):  # eve and oscar share one compiled statement; each gets his own answer
        assert selectors.registry_model_row(world.eve, IRIS)["full_name"] == IRIS
        assert selectors.registry_version_row(world.eve, IRIS, version="1")["version"] == 1
        assert selectors.registry_version_row(world.eve, IRIS, alias="champion")["name"] == IRIS
        with pytest.raises(NotFound):
            selectors.registry_model_row(world.oscar, IRIS)
        with pytest.raises(NotFound):
            selectors.registry_version_row(world.oscar, IRIS, version="1")
    services.grants_change(actor=world.alice, obj=world.iris, changes=[{"principal": "eve", "remove": ["EXECUTE"]}])
    for read in (
        lambda: selectors.registry_model_row(world.eve, IRIS),
        lambda: selectors.registry_version_row(world.eve, IRIS, version="1"),
        lambda: selectors.registry_version_row(world.eve, IRIS, alias="champion"),
    ):
        with pytest.raises(NotFound):
            read()
    assert selectors.registry_model_row(world.admin, IRIS)["full_name"] == IRIS


def test_compiled_sql_refuses_a_value_the_orm_would_rewrite(world):
    # `contains` wraps the value in % and escapes it for LIKE: putting a raw value in its place
    # later would match differently, so it is refused when first compiled, never cached.
    with pytest.raises(AssertionError, match="did not reach the SQL as parameters"):
        db.compiled(("test-contains",), lambda name: RegisteredModel.objects.filter(name__contains=name).values("pk"),
                    name="iris")
    rows = db.compiled_rows(("test-exact",), lambda name: RegisteredModel.objects.filter(full_name=name).values(
        "full_name", "created_at"), name=IRIS)
    assert rows == [{"full_name": IRIS, "created_at": world.iris.created_at}]  # converted as the ORM does
    assert db.compiled_rows(("test-exact",), lambda name: None, name="prod.ml_team.nothing") == []


def test_hand_written_sql_is_compiled_with_its_values_as_parameters(world):
    """A build may return (sql, params) written by hand (the permission id lists do): its values
    are found among the parameters as in a queryset's; it has no columns to read rows by."""
    def build(name):
        return "SELECT id FROM registry_registeredmodel WHERE full_name = %s", [name]

    sql, params = db.compiled(("test-hand-written",), build, name=IRIS)
    assert params == [IRIS] and db.compiled(("test-hand-written",), build, name="x")[1] == ["x"]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        assert cursor.fetchall() == [(world.iris.pk,)]
    with pytest.raises(AssertionError, match="did not reach the SQL as parameters"):
        db.compiled(("test-hand-inlined",), lambda name: (f"SELECT 1 WHERE 'x' = '{name}'", []), name="iris")
    for read in (db.compiled_rows, db.compiled_objects):
        with pytest.raises(AssertionError, match="hand-written SQL"):
            read(("test-hand-written",), build, name=IRIS)


def test_constants_written_into_the_sql_are_plain_names_only(world):
    """`db.literal` and `db.constant` write our constants into the SQL as literals: a value with
    anything but letters, digits, `_`, `.` and `-` (a quote above all) is refused, not escaped."""
    from registry.models import ModelTag

    ModelTag.objects.create(model=world.iris, key="mlflow.prompt.is_prompt", value="x")
    assert ModelTag.objects.filter(key=db.constant("mlflow.prompt.is_prompt")).count() == 1
    for bad in ("it's", "a b", "x;--", ""):
        for write in (db.literal, db.constant):
            with pytest.raises(ValueError, match="no constant"):
                write(bad)


def test_compiled_reads_fit_in_psycopgs_statement_cache(world):
    """psycopg translates a statement's %s once and caches it only under its size limits, which
    `db.cache_long_statements` raises for our permission-filtered reads: were one to outgrow
    them, it would be translated again on every call."""
    from psycopg import _queries

    selectors.registry_model_row(world.eve, IRIS)
    selectors.registry_version_row(world.eve, IRIS, alias="champion")
    selectors.model_get(world.eve, IRIS)
    services.alias_set(actor=world.alice, model=world.iris, alias="champion", version=1)  # db.create, db.update
    compiled = list(db._SQL_CACHE.values())
    assert any(isinstance(entry, db._RowSql) for entry in compiled)
    for entry in compiled:
        params = len(entry.fields) + 1 if isinstance(entry, db._RowSql) else len(entry.params)
        assert len(entry.sql) <= _queries.MAX_CACHED_STATEMENT_LENGTH, entry.sql[:200]
        assert params <= _queries.MAX_CACHED_STATEMENT_PARAMS, entry.sql[:200]


def test_epoch_ms_is_the_timestamp_truncated_to_the_millisecond(world):
    """MLflow's timestamps come from the database (`db.EpochMs`): whole milliseconds, truncated
    — also for microseconds past the half millisecond, and for none at all."""
    import datetime

    for micro in (0, 1_000, 123_999, 999_500):
        when = datetime.datetime(2026, 3, 4, 5, 6, 7, micro, tzinfo=datetime.timezone.utc)
        RegisteredModel.objects.filter(pk=world.iris.pk).update(created_at=when)
        row = RegisteredModel.objects.filter(pk=world.iris.pk).values(
            created=db.EpochMs("created_at"), updated=db.EpochMs("created_at")).get()
        expected = (when - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)) // datetime.timedelta(
            milliseconds=1)
        assert row == {"created": expected, "updated": expected}, micro
        assert selectors.registry_model_row(world.alice, IRIS)["created_ms"] == expected


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_prepared_searches_run_their_generic_plan(world):
    """Left to itself, PostgreSQL kept planning a custom plan on every run of the
    permission-filtered searches (it guessed the generic plan dearer): 2 ms of planning per
    search at 1,000 models. Prepared statements run their one generic plan (settings.py)."""
    from tests.mlflow_support import as_user

    for _ in range(12):
        assert as_user("eve").get("registered-models/search", {"filter": "tags.task = 'classification'"}).json()
    with connection.cursor() as cursor:
        cursor.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
                       ["%registry_modeltag%"])
        plans = cursor.fetchall()
    assert plans and all(custom == 0 and generic > 0 for generic, custom in plans), plans


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's generic plans")
def test_the_prompt_exclusion_reads_only_the_prompt_keys_tags_in_a_generic_plan(world):
    """Every MLflow list leaves prompts out (`selectors._is_prompt`). With its tag key and value
    passed as parameters, the generic plan our prepared statements run took `key = $1` to match
    as many rows as the one key most tags have, and read every model tag to find the prompts
    (1,048 rows a search at 1,048 models). Written into the SQL, only the prompt key's rows are."""
    from registry.models import ModelTag
    from registry.search import PROMPT_TAG
    from registry.selectors import _is_prompt

    schema = services.schema_create(actor=world.admin, catalog=world.prod, name="tagged")
    models = RegisteredModel.objects.bulk_create([
        RegisteredModel(schema=schema, name=f"m{i:04d}", full_name=f"prod.tagged.m{i:04d}", owner_user=world.admin,
                        created_by=world.admin)
        for i in range(1000)
    ])
    ModelTag.objects.all().delete()  # every model tag has one key, as in the benchmark
    ModelTag.objects.bulk_create([ModelTag(model=m, key="tier", value="gold" if i % 10 else "bronze")
                                  for i, m in enumerate(models)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # as autovacuum would, before any prompt exists
    services.model_create(actor=world.alice, schema=world.ml_team, name="greeting",
                          tags=[{"key": PROMPT_TAG, "value": "True"}])
    query = RegisteredModel.objects.exclude(_is_prompt("pk")).values("id")
    assert query.count() == RegisteredModel.objects.count() - 1

    plan = _generic_plan(*query.query.sql_with_params())
    assert rows_read(plan, "registry_modeltag") <= ModelTag.objects.filter(key=PROMPT_TAG).count(), plan


def _generic_plan(text, params):
    """The plan PostgreSQL runs the statement `text` (`%s` for each of `params`) by as our
    prepared statements run it, generic (values unknown when planned), with what it read."""
    from psycopg import sql as pg_sql

    placeholders = iter(range(1, len(params) + 1))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute("PREPARE explained AS " + re.sub("%s", lambda _: f"${next(placeholders)}", text))
        arguments = pg_sql.SQL(", ").join(map(pg_sql.Literal, params)).as_string(cursor.cursor.connection)
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE explained({arguments})")
        plan = cursor.fetchone()[0]
        cursor.execute("DEALLOCATE explained")
    return plan[0]["Plan"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's generic plans")
@pytest.mark.parametrize("endpoint, pattern", [("registered-models/search", "prod.narrow.%"),
                                               ("registered-models/search", "prod.narrow.m_"),
                                               ("model-versions/search", "prod.narrow.%")])
def test_a_names_like_reads_the_models_its_literal_start_names_in_a_generic_plan(world, endpoint, pattern):
    """`name LIKE 'catalog.schema.%'` lists one schema's models (or their versions). The pattern
    reaches our prepared statements as a parameter, so PostgreSQL's generic plan cannot read a
    literal start out of it, and every model's name was matched against it (1,005 rows read here
    to find 5). The start's range, passed beside it (`search.like_range`), is read from the
    name's index: only the models it names."""
    from registry.models import ModelVersion

    for name, count in (("wide", 1000), ("narrow", 5)):
        schema = services.schema_create(actor=world.admin, catalog=world.prod, name=name)
        services.grants_change(actor=world.admin, obj=schema,
                               changes=[{"principal": "tom", "add": ["USE_SCHEMA", "EXECUTE"]}])
        models = RegisteredModel.objects.bulk_create([
            RegisteredModel(schema=schema, name=f"m{i}", full_name=f"prod.{name}.m{i}", owner_user=world.admin,
                            created_by=world.admin)
            for i in range(count)
        ])
        ModelVersion.objects.bulk_create([ModelVersion(model=m, version=1, source="s3://x/y") for m in models])
    docs.rebuild()  # each model's JSON, as writes through the services leave it: the search is one statement
    response, plan = _analyzed_search_plan(endpoint, f"name LIKE '{pattern}'", "registry_registeredmodel")
    found = response.json().get("registered_models") or response.json()["model_versions"]
    assert len(found) == 5
    assert rows_read(plan, "registry_registeredmodel") <= 10, plan


def _analyzed_search_plan(endpoint, filter_string, table):
    """Tom's search of `endpoint` by `filter_string` once the tables are analyzed (as autovacuum
    would leave them): its answer, and the generic plan of its one statement that reads `table`."""
    from tests.mlflow_support import as_user

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    executed = []

    def note(execute, sql, params, many, context):
        executed.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(note):
        response = as_user("tom").get(endpoint, {"filter": filter_string})
    assert response.status_code == 200, response.content
    (plan,) = [_generic_plan(sql, params) for sql, params in executed if table in sql]
    return response, plan


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's generic plans")
def test_a_versions_aliases_are_probed_by_index_while_the_alias_table_is_small(world):
    """Each listed version's aliases are a subquery run once per version. While the alias table
    fits in a page, PostgreSQL priced scanning all of it below probing the version index, and
    read every alias once per version (~0.01 ms each: a model's 4 versions by name read 400
    aliases, 0.07 of its statement's 0.39 ms). Looked up by model as well, they are probed:
    each version's run reads its own aliases only."""
    from registry.models import Alias, ModelVersion

    schema = services.schema_create(actor=world.admin, catalog=world.prod, name="aliased")
    services.grants_change(actor=world.admin, obj=schema, changes=[{"principal": "tom", "add": ["USE_SCHEMA", "EXECUTE"]}])
    models = RegisteredModel.objects.bulk_create([
        RegisteredModel(schema=schema, name=f"m{i}", full_name=f"prod.aliased.m{i}", owner_user=world.admin,
                        created_by=world.admin)
        for i in range(50)
    ])
    versions = ModelVersion.objects.bulk_create([ModelVersion(model=m, version=n, source="s3://x/y")
                                                 for m in models for n in range(1, 5)])
    Alias.objects.bulk_create([Alias(model=v.model, version=v, name="champion" if v.version == 4 else "challenger")
                               for v in versions if v.version > 2])
    response, plan = _analyzed_search_plan("model-versions/search", "name = 'prod.aliased.m7'", "registry_alias")
    found = {v["version"]: v["aliases"] for v in response.json()["model_versions"]}
    assert found == {"1": [], "2": [], "3": ["challenger"], "4": ["champion"]}
    assert rows_read(plan, "registry_alias") <= 2, plan
