"""Pages cost a constant number of queries whatever the number of rows they list."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry import services
from registry.models import Alias, ModelVersion, RegisteredModel, VersionTag

from .conftest import SIGNATURE


def _count(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _add_versions(world, model, n):
    start = model.last_version
    ModelVersion.objects.bulk_create([
        ModelVersion(model=model, version=start + i + 1, status=ModelVersion.READY, signature=SIGNATURE,
                     run_id=f"run{i}", created_by=world.alice)
        for i in range(n)
    ])
    RegisteredModel.objects.filter(pk=model.pk).update(last_version=start + n)
    versions = list(ModelVersion.objects.filter(model=model).order_by("-version")[:20])
    VersionTag.objects.bulk_create([VersionTag(version=v, key="k", value="v") for v in versions])
    Alias.objects.bulk_create([Alias(model=model, version=v, name=f"alias{i}") for i, v in enumerate(versions[:5])])


@pytest.mark.parametrize("persona", ["alice", "eve", "admin"])
def test_the_model_page_costs_the_same_with_1_or_200_versions(client, world, persona):
    # iris: 2 versions; a fresh model with 1, then with 200.
    small = services.model_create(actor=world.alice, schema=world.ml_team, name="small")
    services.version_create(actor=world.alice, model=small, signature=SIGNATURE, status=ModelVersion.READY)
    services.grants_change(actor=world.alice, obj=small, changes=[{"principal": "eve", "add": ["EXECUTE"]}])
    client.force_login(getattr(world, persona))
    url = "/explore/prod/ml_team/small/"
    one = _count(client, url)
    small.refresh_from_db()
    _add_versions(world, small, 199)
    many = _count(client, url)
    assert one == many, (one, many)
    # 15 today: session, user, model, its capabilities (superusers: none), version count, the
    # model's aliases, running-jobs count (top bar), tree (catalogs, schemas, models), model
    # tags, the model's jobs, one page of versions, their aliases, their tags.
    assert many <= 15
    body = client.get(url + "?page=2").content.decode()
    assert "Page 2 of 4" in body


def test_the_model_page_lists_each_page_of_versions_newest_first(client, world):
    # The versions come a page at a time through compiled statements (count, then LIMIT 50
    # OFFSET n): each page holds exactly its versions, the last page its remainder, a page out
    # of range or not a number falls back as Django's Paginator does, and no versions is a page.
    import re

    from django.urls import reverse

    empty = services.model_create(actor=world.alice, schema=world.ml_team, name="empty")
    small = services.model_create(actor=world.alice, schema=world.ml_team, name="small")
    _add_versions(world, small, 120)
    client.force_login(world.alice)
    url = "/explore/prod/ml_team/small/"

    def listed(query):
        body = client.get(url + query).content.decode()
        return [int(n) for n in re.findall(r'href="/explore/prod/ml_team/small/versions/(\d+)/">Version', body)], body

    assert listed("")[0] == list(range(120, 70, -1))
    assert listed("?page=2")[0] == list(range(70, 20, -1))
    assert listed("?page=3")[0] == list(range(20, 0, -1)) and "Page 3 of 3" in listed("?page=3")[1]
    assert listed("?page=999")[0] == list(range(20, 0, -1))
    assert listed("?page=abc")[0] == list(range(120, 70, -1))
    response = client.get(reverse("model", args=["prod", "ml_team", empty.name]))
    assert response.status_code == 200 and ">Version " not in response.content.decode()


def test_the_schema_page_costs_the_same_with_1_or_50_models(client, world):
    schema = services.schema_create(actor=world.admin, catalog=world.prod, name="wide")
    services.model_create(actor=world.admin, schema=schema, name="m0")
    client.force_login(world.admin)
    url = "/explore/prod/wide/"
    one = _count(client, url)
    for i in range(1, 50):
        services.model_create(actor=world.admin, schema=schema, name=f"m{i}")
    many = _count(client, url)
    assert one == many, (one, many)
    assert "m49" in client.get(url).content.decode()


def test_the_schema_page_for_a_grantee_costs_the_same_with_1_or_50_models(client, world):
    client.force_login(world.tom)
    url = "/explore/prod/ml_team/"
    one = _count(client, url)
    for i in range(50):
        services.model_create(actor=world.cody, schema=world.ml_team, name=f"c{i}")
    assert _count(client, url) == one


def test_search_costs_the_same_with_few_or_many_results(client, world):
    client.force_login(world.admin)
    one = _count(client, "/search/?q=iris")
    small = services.model_create(actor=world.alice, schema=world.ml_team, name="iris_big")
    _add_versions(world, small, 60)
    assert _count(client, "/search/?q=iris") == one


def test_the_version_page_costs_a_constant_number_of_queries(client, world):
    client.force_login(world.eve)
    url = "/explore/prod/ml_team/iris/versions/1/"
    before = _count(client, url)
    for i in range(20):
        services.version_tag_set(actor=world.alice, version=world.v1, key=f"k{i}", value="v")
    for i in range(5):
        services.alias_set(actor=world.alice, model=world.iris, alias=f"a{i}x", version=1)
    assert _count(client, url) == before


def test_the_schema_page_and_its_tree_are_paged_whatever_the_number_of_models(client, world):
    schema = services.schema_create(actor=world.admin, catalog=world.prod, name="wide")
    RegisteredModel.objects.bulk_create([
        RegisteredModel(schema=schema, name=f"m{i:03d}", full_name=f"prod.wide.m{i:03d}", owner_user=world.admin,
                        created_by=world.admin)
        for i in range(120)
    ])
    client.force_login(world.admin)
    first = client.get("/explore/prod/wide/").content.decode()
    assert ">m000<" in first and "m049" in first and ">m050<" not in first and "1–50 of 120" in first
    third = client.get("/explore/prod/wide/?page=3").content.decode()
    assert ">m119<" in third and "101–120 of 120" in third
    # The side tree on a model page: 50 models of the open schema, the current one among them.
    model_page = client.get("/explore/prod/wide/m100/").content.decode()
    tree = model_page[model_page.index('class="tree"'):model_page.index("</nav>")]
    assert tree.count("tree-leaf") == 50 and ">m100<" in tree and ">m000<" in tree and ">m060<" not in tree
    assert "All models of wide" in tree
    assert _count(client, "/explore/prod/wide/?page=3") == _count(client, "/explore/prod/wide/")


def test_the_tree_links_each_model_to_its_page_as_reverse_writes_it(client, world):
    # The tree writes a model's link from its schema's URL and its name (`path_part`), not with a
    # reverse() each: the same URL for names with characters a path quotes, and each leads back.
    from urllib.parse import unquote

    from django.urls import resolve, reverse
    from django.utils.html import escape

    names = ["a&b", "ü_x", "q?r", "h#s", "t~u", "e@f", "x'y", "p+q", "(z)", "<b>", "日本"]
    for name in names:
        services.model_create(actor=world.alice, schema=world.ml_team, name=name)
    client.force_login(world.alice)
    on_a_model_page = client.get(reverse("model", args=["prod", "ml_team", "q?r"])).content.decode()
    opened_by_htmx = client.get("/explore/prod/ml_team/?part=tree").content.decode()
    for page in (on_a_model_page, opened_by_htmx):
        for name in names:
            href = reverse("model", args=["prod", "ml_team", name.lower()])
            assert f'href="{escape(href)}"' in page, name
            assert resolve(unquote(href)).kwargs["model"] == name.lower()
