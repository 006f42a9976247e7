"""Every URL the project serves makes a permission decision.

The test walks Django's URL resolver, so a route added later is checked without anyone listing
it here. Each route is called with the names of objects that oscar (a logged-in user without a
single grant) cannot see, with every HTTP method:

- anonymous callers get the login page (pages) or 401 (API), unless the route is in PUBLIC;
- oscar gets a refusal (400/403/404/405), never a 2xx or a 500, and never a page showing anything
  of the hidden world; routes in LISTS answer 200 for oscar (they list what he may see) and must
  show none of it.

A route whose URL parameter has no sample below fails with a message saying so: give it one.
"""

import base64
import json
import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from registry import tracking
from registry.models_jobs import Job

# Never sent in any request below, present in the hidden world: if one of these reaches oscar,
# a route showed him something he may not see.
SECRETS = ("classifier", "classification", "fraud", "churn", "secret-run", "secret-dataset", "Production models")

PUBLIC = {
    "accounts/login/",  # the login form itself
    "accounts/logout/",  # logging out needs no session
    "api/schema/",  # the OpenAPI document: routes, never data
}
# Answer 200 to oscar with an empty list (or his own objects): the filter is the decision.
LISTS = {
    "",
    "search/",
    "jobs/",
    "experiments/",
    "api/2.1/unity-catalog/catalogs",
    "api/2.1/unity-catalog/schemas",
    "api/2.1/unity-catalog/models",
    "api/2.0/mlflow/registered-models/search",
    "api/2.0/mlflow/model-versions/search",
    "api/2.0/mlflow/registered-models/get-latest-versions",
    "api/2.0/mlflow/experiments/search",
    "api/2.0/mlflow/runs/search",
    "api/2.0/mlflow/logged-models/search",
}
# Create something of oscar's own (outside any catalog): allowed to everyone by design.
OWN_CREATES = {
    ("api/2.0/mlflow/experiments/create", "post"),
    ("api/2.0/mlflow/runs/create", "post"),  # into the shared Default experiment when none is named
}
REFUSALS = {400, 403, 404, 405}
METHODS = ("get", "post", "put", "patch", "delete")


def _routes(patterns=None, prefix=""):
    for p in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(p, URLResolver):
            yield from _routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


def _samples(world):
    exp = tracking.experiment_create(actor=world.alice, name="alice-exp")
    run = tracking.run_create(actor=world.alice, experiment_id=exp.pk, run_name="alice-secret-run")
    logged = tracking.logged_model_create(actor=world.alice, experiment_id=exp.pk, name="alice-logged")
    job = Job.objects.create(kind=Job.COPY, created_by=world.alice, model=world.iris, target_name="prod.ml_team.iris")
    url = {
        "catalog": "prod",
        "schema": "ml_team",
        "model": "iris",
        "version": "1",
        "name": "prod",
        "securable_type": "registered_model",
        "job_id": str(job.pk),
        "path": "mlartifacts/x/MLmodel",
        "model_id": logged.model_id,
        "key": "k",
        "experiment_id": str(exp.pk),
        "run_id": run.run_uuid,
    }
    body = {
        "name": "prod.ml_team.iris",
        "new_name": "prod.ml_team.renamed",
        "full_name": "prod.ml_team.iris",
        "version": "1",
        "alias": "Champion",
        "key": "task",
        "value": "x",
        "description": "x",
        "source": "models:/prod.ml_team.iris/1",
        "run_id": run.run_uuid,
        "run_uuid": run.run_uuid,
        "experiment_id": str(exp.pk),
        "experiment_ids": [str(exp.pk)],
        "experiment_name": "alice-exp",
        "model_id": logged.model_id,
        "metric_key": "m",
        "stage": "Production",
        "filter": "name='prod.ml_team.iris'",
    }
    return url, body


def _fill(route, url_samples):
    """The route with each <converter:name> replaced by its sample; regex routes get a tail.
    Unity Catalog routes name objects by full name, of the depth the route expects."""
    depth = {"schemas/": "prod.ml_team", "models/": "prod.ml_team.iris", "permissions/": "prod.ml_team.iris"}
    full = next((v for k, v in depth.items() if "unity-catalog/" + k in route), None)

    def one(match):
        name = match.group(2)
        if name == "full_name" and full:
            return full
        assert name in url_samples, f"route {route!r}: give URL parameter <{name}> a sample in test_route_coverage"
        return url_samples[name]

    path = re.sub(r"<(?:(\w+):)?(\w+)>", one, route)
    return "/" + path.replace("^", "").replace(".*$", "anything").replace("$", "")


def _call(client, method, path, body, headers):
    if method == "get":
        return client.get(path, {k: v for k, v in body.items() if not isinstance(v, list)}, **headers)
    return getattr(client, method)(path, json.dumps(body), content_type="application/json", **headers)


def _assert_no_secrets(response, where):
    if response.get("Content-Type", "").startswith(("text/", "application/json")) and not getattr(response, "streaming", False):
        text = response.content.decode(errors="replace")
        leaked = [s for s in SECRETS if s in text]
        assert not leaked, f"{where} showed {leaked}"


def _world_secrets(world):
    from registry import services

    services.model_tag_set(actor=world.alice, model=world.iris, key="task2", value="classification")
    run = tracking.run_create(actor=world.alice, experiment_id="0", run_name="secret-run-default")
    tracking.run_log_inputs(
        actor=world.alice, run_id=run.run_uuid,
        datasets=[{"dataset": {"name": "secret-dataset", "digest": "d1", "source_type": "local", "source": "s"}}],
    )


@pytest.mark.django_db
def test_every_route_makes_a_permission_decision(world):
    url_samples, body = _samples(world)
    _world_secrets(world)
    routes = [r for r in _routes() if not r.startswith("admin/")]  # Django's admin: staff only, its own checks
    assert len(routes) > 80

    # The secrets are really there, for someone allowed to see them.
    admin = Client()
    admin.force_login(world.admin)
    shown = admin.get("/explore/prod/ml_team/iris/").content.decode() + admin.get("/search/?q=").content.decode()
    assert all(s in shown for s in ("classifier", "classification", "fraud", "churn")), "the hidden world changed"

    anonymous = Client()
    oscar_page = Client()
    oscar_page.force_login(world.oscar)
    oscar_api = Client()
    basic = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"oscar:oscar-pass-123").decode()}

    problems = []
    for route in routes:
        path = _fill(route, url_samples)
        is_api = route.startswith("api/")
        for method in METHODS:
            where = f"{method.upper()} {path}"
            # Anonymous: nothing but the public routes.
            response = _call(anonymous, method, path, body, {})
            if route not in PUBLIC:
                if is_api and response.status_code != 401:
                    problems.append(f"anonymous {where}: {response.status_code}, expected 401")
                if not is_api and not (
                    response.status_code in (302, 405) and (response.status_code == 405 or "/accounts/login/" in response["Location"])
                ):
                    problems.append(f"anonymous {where}: {response.status_code}, expected the login page")
            _assert_no_secrets(response, f"anonymous {where}")
            # Oscar: refusals, or empty lists.
            client, headers = (oscar_api, basic) if is_api else (oscar_page, {})
            response = _call(client, method, path, body, headers)
            if route == "accounts/logout/":
                oscar_page.force_login(world.oscar)  # he just logged himself out
            _assert_no_secrets(response, f"oscar {where}")
            code = response.status_code
            if code >= 500:
                problems.append(f"oscar {where}: {code}")
            elif route in PUBLIC or (route, method) in OWN_CREATES:
                continue
            elif route in LISTS and method == "get" or route in LISTS and code == 200:
                continue
            elif code not in REFUSALS:
                problems.append(f"oscar {where}: {code}, expected a refusal")
    assert not problems, "\n".join(problems)
