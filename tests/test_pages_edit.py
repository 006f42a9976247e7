"""Every edit from the pages: allowed ones change what the page then shows; refused ones answer
403 (or 404 when the object is invisible) and change nothing; bad input comes back as a field
error (400) with what was typed kept."""

import re

from django.urls import reverse

from registry.models import Alias, Catalog, ModelTag, ModelVersion, RegisteredModel, Schema

IRIS = "/explore/prod/ml_team/iris/"
FRAUD = "/explore/prod/ml_team/fraud/"
E_IRIS = "/edit/model/prod/ml_team/iris/"
E_FRAUD = "/edit/model/prod/ml_team/fraud/"
E_IRIS_V1 = "/edit/version/prod/ml_team/iris/1/"


def as_user(client, user):
    client.force_login(user)
    return client


def page(client, url):
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


# --- Descriptions -------------------------------------------------------------------------
def test_the_owner_edits_the_description_and_the_page_shows_it(client, world):
    c = as_user(client, world.alice)
    response = c.post(E_IRIS + "description/", {"description": "Now **bold**"})
    assert response.status_code == 302 and response["Location"].endswith("#description")
    assert "Now <strong>bold</strong>" in page(c, IRIS)


def test_editing_in_place_with_htmx_returns_just_the_description(client, world):
    c = as_user(client, world.alice)
    body = page(c, IRIS + "?edit=description")
    assert 'name="description"' in body and "Save description" in body
    response = c.post(E_IRIS + "description/", {"description": "Swapped _in place_"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="description"') and "Swapped <em>in place</em>" in body
    assert "<html" not in body


def test_a_too_long_description_is_a_field_error_and_nothing_changes(client, world, settings):
    settings.REGISTRY = {**settings.REGISTRY, "MAX_DESCRIPTION_LENGTH": 10}
    c = as_user(client, world.alice)
    response = c.post(E_IRIS + "description/", {"description": "x" * 11})
    assert response.status_code == 400
    body = response.content.decode()
    assert "at most 10 characters" in body and "x" * 11 in body  # typed text kept
    response = c.post(E_IRIS + "description/", {"description": "x" * 11}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and b"at most 10 characters" in response.content
    assert RegisteredModel.objects.get(pk=world.iris.pk).description == "Iris *classifier*"


def test_a_tagger_may_not_edit_the_description(client, world):
    c = as_user(client, world.tom)
    response = c.post(E_IRIS + "description/", {"description": "hacked"})
    assert response.status_code == 403
    assert b"requires ownership" in response.content
    assert RegisteredModel.objects.get(pk=world.iris.pk).description == "Iris *classifier*"


def test_an_outsider_gets_404_not_403(client, world):
    c = as_user(client, world.oscar)
    assert c.post(E_IRIS + "description/", {"description": "x"}).status_code == 404
    assert c.post(E_IRIS + "tag/set/", {"key": "a", "value": "b"}).status_code == 404
    assert c.post(E_IRIS + "delete/", {"confirm_name": "prod.ml_team.iris"}).status_code == 404
    assert RegisteredModel.objects.filter(pk=world.iris.pk, description="Iris *classifier*").exists()


def test_the_group_owner_edits_its_model(client, world):
    c = as_user(client, world.gina)
    assert c.post(E_FRAUD + "description/", {"description": "Owned by the group"}).status_code == 302
    assert "Owned by the group" in page(c, FRAUD)


def test_version_and_container_descriptions(client, world):
    c = as_user(client, world.alice)
    assert c.post(E_IRIS_V1 + "description/", {"description": "First *cut*"}).status_code == 302
    assert "First <em>cut</em>" in page(c, "/explore/prod/ml_team/iris/versions/1/")
    assert c.post("/edit/catalog/prod/description/", {"description": "x"}).status_code == 403
    c = as_user(client, world.admin)
    assert c.post("/edit/schema/prod/ml_team/description/", {"description": "The *team*"}).status_code == 302
    assert "The <em>team</em>" in page(c, "/explore/prod/ml_team/")


# --- Tags ---------------------------------------------------------------------------------
def test_a_tagger_adds_and_removes_a_tag(client, world):
    c = as_user(client, world.tom)
    assert c.post(E_IRIS + "tag/set/", {"key": "stage", "value": "qa"}).status_code == 302
    body = page(c, IRIS)
    assert ">stage<" in body and ">qa<" in body
    assert c.post(E_IRIS + "tag/delete/", {"key": "stage"}).status_code == 302
    assert ">stage<" not in page(c, IRIS)


def test_tags_with_htmx_return_the_tag_row(client, world):
    c = as_user(client, world.alice)
    response = c.post(E_IRIS + "tag/set/", {"key": "owner team", "value": "ml"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="tags"') and ">owner team<" in body


def test_a_bad_tag_key_is_an_error_next_to_the_key(client, world):
    c = as_user(client, world.alice)
    response = c.post(E_IRIS + "tag/set/", {"key": "../etc", "value": "v"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "must not look like a path" in body and 'id="tag_key-error"' in body
    assert not ModelTag.objects.filter(key="../etc").exists()


def test_a_reader_may_not_tag(client, world):
    c = as_user(client, world.eve)
    response = c.post(E_IRIS + "tag/set/", {"key": "x", "value": "y"})
    assert response.status_code == 403 and b"APPLY TAG" in response.content
    assert not ModelTag.objects.filter(key="x").exists()


def test_version_tags(client, world):
    c = as_user(client, world.tom)
    assert c.post(E_IRIS_V1 + "tag/set/", {"key": "validation_status", "value": "approved"}).status_code == 302
    assert ">validation_status<" in page(c, "/explore/prod/ml_team/iris/versions/1/")


# --- Aliases ------------------------------------------------------------------------------
def test_a_reader_may_not_move_an_alias(client, world):
    c = as_user(client, world.eve)
    response = c.post(E_IRIS + "alias/", {"alias": "Champion", "version": "1"})
    assert response.status_code == 403
    assert b"requires ownership" in response.content
    assert Alias.objects.get(model=world.iris, name="Champion").version == world.v2


def test_the_owner_moves_adds_and_removes_aliases(client, world):
    c = as_user(client, world.alice)
    assert c.post(E_IRIS + "alias/", {"alias": "Champion", "version": "1"}).status_code == 302
    assert c.post(E_IRIS + "alias/", {"alias": "Challenger", "version": "2"}).status_code == 302
    body = page(c, IRIS)
    assert "8 of 10 left" in body
    assert Alias.objects.get(model=world.iris, name="Champion").version == world.v1
    assert c.post(E_IRIS + "alias/delete/", {"alias": "Challenger"}).status_code == 302
    assert "@Challenger" not in page(c, IRIS)


def test_an_alias_set_from_the_version_page_returns_there(client, world):
    c = as_user(client, world.alice)
    response = c.post(E_IRIS + "alias/", {"alias": "Shadow", "version": "1", "from_version": "1"})
    assert response["Location"] == "/explore/prod/ml_team/iris/versions/1/#aliases"
    assert "@Shadow" in page(c, "/explore/prod/ml_team/iris/versions/1/")


def test_bad_aliases_are_field_errors(client, world):
    c = as_user(client, world.alice)
    for alias, version, field, message in [
        ("latest", "1", "alias", "is reserved"),
        ("v3", "1", "alias", "is reserved"),
        ("Good", "99", "version", "not found"),
        ("Good", "x", "version", "version"),
        ("bad alias", "1", "alias", "only letters"),
    ]:
        response = c.post(E_IRIS + "alias/", {"alias": alias, "version": version})
        assert response.status_code == 400, alias
        error = re.search(rf'id="alias_{field}-error"[^>]*>([^<]*)<', response.content.decode())
        assert error and message in error.group(1), (alias, version)
    assert Alias.objects.filter(model=world.iris).count() == 1


def test_the_eleventh_alias_is_refused(client, world):
    c = as_user(client, world.alice)
    for i in range(9):
        assert c.post(E_IRIS + "alias/", {"alias": f"a{i}x", "version": "1"}).status_code == 302
    assert "0 of 10 left" in page(c, IRIS)
    response = c.post(E_IRIS + "alias/", {"alias": "eleventh", "version": "1"})
    assert response.status_code == 400 and b"the most allowed" in response.content
    assert Alias.objects.filter(model=world.iris).count() == 10


# --- Rename and delete --------------------------------------------------------------------
def test_the_owner_renames_and_lands_on_the_new_page(client, world):
    c = as_user(client, world.alice)
    response = c.post(E_IRIS + "rename/", {"new_name": "iris_v2"})
    assert response.status_code == 302 and response["Location"] == "/explore/prod/ml_team/iris_v2/"
    assert c.get(IRIS).status_code == 404
    assert "prod.ml_team.iris_v2" in page(c, "/explore/prod/ml_team/iris_v2/")


def test_a_rename_onto_an_existing_name_is_a_field_error(client, world):
    c = as_user(client, world.alice)
    response = c.post(E_IRIS + "rename/", {"new_name": "fraud"})
    assert response.status_code == 400 and b"already exists" in response.content
    response = c.post(E_IRIS + "rename/", {"new_name": "a.b"})
    assert response.status_code == 400
    assert RegisteredModel.objects.get(pk=world.iris.pk).name == "iris"


def test_a_tagger_may_not_rename(client, world):
    c = as_user(client, world.tom)
    assert c.post(E_IRIS + "rename/", {"new_name": "mine"}).status_code == 403


def test_delete_requires_the_typed_full_name(client, world):
    c = as_user(client, world.alice)
    response = c.post(E_IRIS + "delete/", {"confirm_name": "iris"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Type prod.ml_team.iris exactly to confirm." in body and "data-auto-open" in body
    assert RegisteredModel.objects.filter(pk=world.iris.pk).exists()
    response = c.post(E_IRIS + "delete/", {"confirm_name": "prod.ml_team.iris"})
    assert response.status_code == 302 and response["Location"] == "/explore/prod/ml_team/"
    assert not RegisteredModel.objects.filter(pk=world.iris.pk).exists()
    assert c.get(IRIS).status_code == 404


def test_a_reader_may_not_delete(client, world):
    c = as_user(client, world.eve)
    response = c.post(E_IRIS + "delete/", {"confirm_name": "prod.ml_team.iris"})
    assert response.status_code == 403
    assert RegisteredModel.objects.filter(pk=world.iris.pk).exists()
    response = c.post(E_IRIS_V1 + "delete/", {"confirm_name": "prod.ml_team.iris/1"})
    assert response.status_code == 403
    assert ModelVersion.objects.filter(pk=world.v1.pk).exists()


def test_the_owner_deletes_a_version(client, world):
    c = as_user(client, world.alice)
    assert "Delete version 1 of prod.ml_team.iris" in page(c, "/explore/prod/ml_team/iris/versions/1/")
    assert c.post(E_IRIS_V1 + "delete/", {"confirm_name": "nope"}).status_code == 400
    response = c.post(E_IRIS_V1 + "delete/", {"confirm_name": "prod.ml_team.iris/1"})
    assert response.status_code == 302 and response["Location"] == IRIS
    assert c.get("/explore/prod/ml_team/iris/versions/1/").status_code == 404
    assert "1 version" in page(c, IRIS)


# --- Creating -----------------------------------------------------------------------------
def test_only_superusers_create_catalogs(client, world):
    assert as_user(client, world.alice).post("/edit/catalogs/new/", {"name": "lab"}).status_code == 403
    c = as_user(client, world.admin)
    response = c.post("/edit/catalogs/new/", {"name": "Lab", "description": "play"})
    assert response.status_code == 302 and response["Location"] == "/explore/lab/"
    response = c.post("/edit/catalogs/new/", {"name": "lab"})
    assert response.status_code == 400 and b"already exists" in response.content
    response = c.post("/edit/catalogs/new/", {"name": "a.b"})
    assert response.status_code == 400 and b"must not contain a period" in response.content
    assert Catalog.objects.filter(name="lab").count() == 1


def test_schema_creation_needs_create_schema(client, world):
    assert as_user(client, world.alice).post("/edit/catalog/prod/create-schema/", {"name": "x"}).status_code == 403
    assert as_user(client, world.oscar).post("/edit/catalog/prod/create-schema/", {"name": "x"}).status_code == 404
    c = as_user(client, world.admin)
    assert c.post("/edit/catalog/prod/create-schema/", {"name": "vision"}).status_code == 302
    assert Schema.objects.filter(catalog=world.prod, name="vision").exists()


def test_model_creation_needs_create_model(client, world):
    url = "/edit/schema/prod/ml_team/create-model/"
    assert as_user(client, world.tom).post(url, {"name": "x"}).status_code == 403
    assert as_user(client, world.uma).post(url, {"name": "x"}).status_code == 404
    c = as_user(client, world.cody)
    response = c.post(url, {"name": "churn", "description": "Cody's"})
    assert response.status_code == 302 and response["Location"] == "/explore/prod/ml_team/churn/"
    assert "No versions yet" in page(c, "/explore/prod/ml_team/churn/")
    response = c.post(url, {"name": "iris"})
    assert response.status_code == 400 and b"already exists" in response.content


# --- Grants and ownership -----------------------------------------------------------------
def test_the_owner_grants_and_revokes(client, world):
    c = as_user(client, world.alice)
    response = c.post(E_IRIS + "grant/", {"principal": "ml-admins", "privilege": "EXECUTE"})
    assert response.status_code == 302
    assert as_user(client, world.gina).get(IRIS).status_code == 200
    c = as_user(client, world.alice)
    assert c.post(E_IRIS + "revoke/", {"principal": "group:ml-admins", "privilege": "EXECUTE"}).status_code == 302
    assert as_user(client, world.gina).get(IRIS).status_code == 404


def test_grant_errors_are_next_to_the_field(client, world):
    c = as_user(client, world.alice)
    response = c.post(E_IRIS + "grant/", {"principal": "nobody", "privilege": "EXECUTE"})
    assert response.status_code == 400 and b"No user or group is named" in response.content
    response = c.post(E_IRIS + "grant/", {"principal": "eve", "privilege": "CREATE SCHEMA"})
    assert response.status_code == 400 and b"Select a valid choice" in response.content


def test_a_non_owner_may_not_grant(client, world):
    c = as_user(client, world.eve)
    response = c.post(E_IRIS + "grant/", {"principal": "oscar", "privilege": "EXECUTE"})
    assert response.status_code == 403
    assert as_user(client, world.oscar).get(IRIS).status_code == 404


def test_transferring_ownership_to_a_group(client, world):
    c = as_user(client, world.alice)
    response = c.post(E_IRIS + "owner/", {"principal": "ml-admins"})
    # alice keeps no privilege on iris: she lands on the schema page, not on a 404
    assert response.status_code == 302 and response["Location"] == "/explore/prod/ml_team/"
    c = as_user(client, world.gina)
    assert c.post(E_IRIS + "description/", {"description": "ours now"}).status_code == 302
    assert "ours now" in page(c, IRIS)


def test_catalog_grants_by_the_admin(client, world):
    c = as_user(client, world.admin)
    assert c.post("/edit/catalog/staging/grant/", {"principal": "alice", "privilege": "USE CATALOG"}).status_code == 302
    assert as_user(client, world.alice).get("/explore/staging/").status_code == 200


def test_a_refused_htmx_edit_replaces_the_page_body_with_the_reason(client, world):
    c = as_user(client, world.tom)
    response = c.post(E_IRIS + "description/", {"description": "x"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    assert response["HX-Retarget"] == "#main" and response["HX-Reselect"] == "#main"
    assert b"requires ownership" in response.content


def test_tampered_hidden_fields_never_cause_a_server_error(client, world):
    c = as_user(client, world.alice)
    response = c.post(E_IRIS + "alias/", {"alias": "X1", "version": "1", "from_version": "abc"})
    assert response.status_code == 302 and response["Location"].startswith(IRIS)
    response = c.post(E_IRIS + "alias/", {"alias": "latest", "version": "1", "from_version": "99"})
    assert response.status_code == 404
    response = c.post(E_IRIS + "revoke/", {"principal": "nobody", "privilege": "EXECUTE"})
    assert response.status_code == 400 and b"No user or group is named" in response.content
    response = c.post(E_IRIS + "revoke/", {"principal": "eve", "privilege": "USE CATALOG"})
    assert response.status_code == 400 and b"cannot be granted on a registered model" in response.content
    response = c.post(E_IRIS + "tag/delete/", {"key": ""})
    assert response.status_code == 302
    assert c.get("/explore/prod/ml_team/iris/versions/0/").status_code in (400, 404)
