"""BAD_INPUTS.md, "Names, tags, aliases": each bad input → InvalidInput whose message names the
rule broken, and nothing stored (every registry table counted before and after, and the rows
the call aimed at compared too)."""

import time

import pytest
from django.conf import settings

from registry import names, services
from registry.errors import InvalidInput
from registry.models import (
    Alias,
    AuditEvent,
    Catalog,
    CatalogGroupGrant,
    CatalogUserGrant,
    ModelGroupGrant,
    ModelTag,
    ModelUserGrant,
    ModelVersion,
    RegisteredModel,
    Schema,
    SchemaGroupGrant,
    SchemaUserGrant,
    VersionTag,
)

TABLES = [
    Catalog, Schema, RegisteredModel, ModelVersion, Alias, ModelTag, VersionTag, AuditEvent,
    CatalogUserGrant, CatalogGroupGrant, SchemaUserGrant, SchemaGroupGrant, ModelUserGrant, ModelGroupGrant,
]


def state():
    """Row counts of every registry table, plus the content a bad call could have altered."""
    return {
        "counts": {t.__name__: t.objects.count() for t in TABLES},
        "models": sorted(RegisteredModel.objects.values_list("full_name", "description", "last_version")),
        "aliases": sorted(Alias.objects.values_list("model_id", "name", "version_id")),
        "model_tags": sorted(ModelTag.objects.values_list("model_id", "key", "value")),
        "version_tags": sorted(VersionTag.objects.values_list("version_id", "key", "value")),
    }


def rejected(call, *words):
    """Run `call`, expect InvalidInput mentioning every one of `words`; the stored state
    must be exactly what it was."""
    before = state()
    with pytest.raises(InvalidInput) as info:
        call()
    message = info.value.message
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
    assert state() == before
    return message


MB = 1024 * 1024

# (bad model-name part, words the message must contain)
BAD_NAME_PARTS = [
    pytest.param("m%6fdel", "percent", id="percent-encoded (CVE-2024-3099)"),
    pytest.param("a/b", "slash", id="slash"),
    pytest.param("a:b", "colon", id="colon"),
    pytest.param("a.b", "period", id="period inside a part"),
    pytest.param("my model", "space", id="space"),
    pytest.param("tab\there", "control", id="tab"),
    pytest.param("new\nline", "control", id="newline"),
    pytest.param("nul\x00byte", "control", id="NUL"),
    pytest.param("bell\x07", "control", id="BEL"),
    pytest.param("zero\u200bwidth", "control", id="zero-width space"),
    pytest.param("rtl\u202eoverride", "control", id="bidi override"),
    pytest.param("x" * 256, "at most 255", id="256 characters"),
    pytest.param("x" * MB, "at most 255", id="1 MB"),
    pytest.param("", "empty", id="empty"),
    pytest.param("back`tick", "backtick", id="backtick"),
]


@pytest.mark.parametrize("bad,word", BAD_NAME_PARTS)
def test_it_refuses_a_bad_model_name(world, bad, word):
    rejected(lambda: services.model_create(actor=world.alice, schema=world.ml_team, name=bad), word)


@pytest.mark.parametrize("bad,word", BAD_NAME_PARTS)
def test_it_refuses_a_bad_rename(world, bad, word):
    if "." in bad:
        word = "period"
        # A dotted new name is read as a full name: "a.b" has two levels, not three.
        rejected(lambda: services.model_rename(actor=world.alice, model=world.iris, new_name=bad), "three levels")
        return
    rejected(lambda: services.model_rename(actor=world.alice, model=world.iris, new_name=bad), word)


@pytest.mark.parametrize("bad,word", BAD_NAME_PARTS[:6])
def test_it_refuses_bad_catalog_and_schema_names(world, bad, word):
    rejected(lambda: services.catalog_create(actor=world.admin, name=bad), word)
    rejected(lambda: services.schema_create(actor=world.admin, catalog=world.prod, name=bad), word)


@pytest.mark.parametrize("full_name,words", [
    pytest.param("prod.ml_team", ["three levels", "got 2"], id="two levels"),
    pytest.param("iris", ["three levels", "got 1"], id="one level"),
    pytest.param("prod.ml_team.iris.v2", ["three levels", "got 4"], id="four levels"),
    pytest.param("prod.ml_team.", ["model name", "empty"], id="empty part"),
    pytest.param("prod..iris", ["schema name", "empty"], id="empty middle part"),
    pytest.param("prod.ml_team.m%6fdel", ["percent"], id="percent in a full name"),
    pytest.param("prod.ml team.iris", ["space"], id="space in the schema"),
    pytest.param("prod.ml_team.a/b", ["slash"], id="slash in the model"),
    pytest.param("prod.ml_team." + "x" * 256, ["at most 255"], id="part too long"),
    pytest.param("prod.ml_team." + "x" * MB, ["too long"], id="1 MB full name"),
    pytest.param("", ["empty"], id="empty"),
])
def test_it_refuses_bad_full_names(world, full_name, words):
    with pytest.raises(InvalidInput) as info:
        names.parse_full_name(full_name)
    for word in words:
        assert word in info.value.message
    # Through a service too: a rename to a full name in the same schema.
    if full_name.startswith("prod.ml_team.") or full_name.count(".") != 2:
        if "." in full_name:
            rejected(lambda: services.model_rename(actor=world.alice, model=world.iris, new_name=full_name), *words)


def test_it_refuses_a_1mb_name_fast(world):
    started = time.monotonic()
    for _ in range(20):
        with pytest.raises(InvalidInput):
            names.parse_full_name("a." * (MB // 2))
        with pytest.raises(InvalidInput):
            names.validate_name_part("x" * MB)
    assert time.monotonic() - started < 1.0


def test_it_keeps_names_lowercase_so_case_variants_collide(world):
    from registry.errors import AlreadyExists

    before = state()
    with pytest.raises(AlreadyExists):
        services.model_create(actor=world.alice, schema=world.ml_team, name="IRIS")
    assert state() == before
    assert names.parse_full_name("Prod.ML_Team.Iris") == ("prod", "ml_team", "iris")


# --- Aliases ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bad,word", [
    pytest.param("latest", "reserved", id="latest"),
    pytest.param("LATEST", "reserved", id="LATEST"),
    pytest.param("Latest", "reserved", id="Latest"),
    pytest.param("v3", "reserved", id="v3"),
    pytest.param("V12", "reserved", id="V12"),
    pytest.param("a/b", "only letters, digits", id="slash"),
    pytest.param("a.b", "only letters, digits", id="period"),
    pytest.param("a b", "only letters, digits", id="space"),
    pytest.param("a\x00", "only letters, digits", id="NUL"),
    pytest.param("", "empty", id="empty"),
    pytest.param("a" * 256, "at most 255", id="256 characters"),
    pytest.param("a" * MB, "at most 255", id="1 MB"),
    pytest.param(None, "empty", id="None"),
])
def test_it_refuses_a_bad_alias(world, bad, word):
    rejected(lambda: services.alias_set(actor=world.alice, model=world.iris, alias=bad, version=1), word)


def test_it_accepts_the_edges_of_the_alias_rules(world):
    for good in ("a" * 255, "v", "version3", "v3a", "latest_prod", "Champion-2"):
        services.alias_set(actor=world.alice, model=world.iris, alias=good, version=1)
    assert Alias.objects.filter(model=world.iris).count() == 7


@pytest.mark.parametrize("version,word", [("0", "positive"), ("-1", "integer"), ("x", "integer"), ("1.0", "integer"), ("", "integer")])
def test_it_refuses_a_bad_version_number_for_an_alias(world, version, word):
    rejected(lambda: services.alias_set(actor=world.alice, model=world.iris, alias="Staging", version=version), word)


def test_it_refuses_an_11th_alias_but_still_moves_one(world):
    limit = settings.REGISTRY["MAX_ALIASES_PER_MODEL"]
    assert limit == 10
    for i in range(limit - 1):  # Champion is already there
        services.alias_set(actor=world.alice, model=world.iris, alias=f"a{i}", version=1)
    assert Alias.objects.filter(model=world.iris).count() == limit
    rejected(lambda: services.alias_set(actor=world.alice, model=world.iris, alias="eleventh", version=1), "10 aliases")
    # Moving an existing alias is not an 11th.
    services.alias_set(actor=world.alice, model=world.iris, alias="champion", version=1)
    assert Alias.objects.filter(model=world.iris).count() == limit
    assert Alias.objects.get(model=world.iris, name__iexact="champion").version == world.v1


# --- Tags ------------------------------------------------------------------------------------
BAD_TAG_KEYS = [
    pytest.param("..", "path", id=".."),
    pytest.param("../etc", "path", id="../etc"),
    pytest.param("a/../b", "path", id="a/../b"),
    pytest.param("a/..", "path", id="a/.."),
    pytest.param("/etc/passwd", "path", id="leading slash"),
    pytest.param("a//b", "path", id="double slash"),
    pytest.param("a/./b", "path", id="a/./b (resolves to a/b)"),
    pytest.param("a/", "path", id="trailing slash (resolves to a)"),
    pytest.param("k" * 251, "at most 250", id="251 characters"),
    pytest.param("k" * MB, "at most 250", id="1 MB"),
    pytest.param("", "empty", id="empty"),
    pytest.param("<script>", "only letters", id="markup"),
    pytest.param("a\x00b", "only letters", id="NUL"),
    pytest.param("a\nb", "only letters", id="newline"),
]


@pytest.mark.parametrize("key,word", BAD_TAG_KEYS)
def test_it_refuses_a_bad_model_tag_key(world, key, word):
    rejected(lambda: services.model_tag_set(actor=world.alice, model=world.iris, key=key, value="x"), word)


@pytest.mark.parametrize("key,word", BAD_TAG_KEYS)
def test_it_refuses_a_bad_version_tag_key(world, key, word):
    rejected(lambda: services.version_tag_set(actor=world.alice, version=world.v1, key=key, value="x"), word)


def test_it_accepts_the_edges_of_the_tag_rules(world):
    limit = settings.REGISTRY["MAX_TAG_VALUE_LENGTH"]
    for key in ("k" * 250, "mlflow.source.type", "a/b", "a..b", "team: ml-ops", "x-y_z"):
        services.model_tag_set(actor=world.alice, model=world.iris, key=key, value="v" * limit)
    assert ModelTag.objects.filter(model=world.iris).count() == 7


def test_it_refuses_a_tag_value_over_the_limit(world):
    limit = settings.REGISTRY["MAX_TAG_VALUE_LENGTH"]
    message = rejected(
        lambda: services.model_tag_set(actor=world.alice, model=world.iris, key="task", value="v" * (limit + 1)),
        f"at most {limit}",
    )
    assert "tag value" in message
    rejected(
        lambda: services.version_tag_set(actor=world.alice, version=world.v1, key="k", value="v" * (limit + 1)),
        f"at most {limit}",
    )
    assert ModelTag.objects.get(model=world.iris, key="task").value == "classification"


def test_it_refuses_more_tags_than_the_limit(world):
    limit = settings.REGISTRY["MAX_TAGS_PER_OBJECT"]
    ModelTag.objects.bulk_create([ModelTag(model=world.iris, key=f"k{i}", value="v") for i in range(limit - 1)])
    assert ModelTag.objects.filter(model=world.iris).count() == limit  # plus `task`
    rejected(lambda: services.model_tag_set(actor=world.alice, model=world.iris, key="one_more", value="v"), f"{limit} tags")
    # Changing an existing tag at the limit is fine.
    services.model_tag_set(actor=world.alice, model=world.iris, key="task", value="regression")

    VersionTag.objects.bulk_create([VersionTag(version=world.v1, key=f"k{i}", value="v") for i in range(limit)])
    rejected(lambda: services.version_tag_set(actor=world.alice, version=world.v1, key="one_more", value="v"), f"{limit} tags")


def test_it_refuses_too_many_or_bad_tags_at_creation(world):
    limit = settings.REGISTRY["MAX_TAGS_PER_OBJECT"]
    too_many = [{"key": f"k{i}", "value": "v"} for i in range(limit + 1)]
    rejected(lambda: services.model_create(actor=world.alice, schema=world.ml_team, name="many", tags=too_many), f"{limit} tags")
    rejected(lambda: services.version_create(actor=world.alice, model=world.iris, tags=too_many), f"{limit} tags")
    bad = [{"key": "ok", "value": "v"}, {"key": "/etc", "value": "v"}]
    rejected(lambda: services.model_create(actor=world.alice, schema=world.ml_team, name="badtag", tags=bad), "path")
    rejected(lambda: services.version_create(actor=world.alice, model=world.iris, tags=bad), "path")


def test_it_refuses_a_description_over_the_limit(world):
    limit = settings.REGISTRY["MAX_DESCRIPTION_LENGTH"]
    rejected(lambda: services.model_update(actor=world.alice, model=world.iris, description="d" * (limit + 1)), f"at most {limit}")
    rejected(lambda: services.version_update(actor=world.alice, version=world.v1, description="d" * (limit + 1)), f"at most {limit}")
