"""What every page view shares: loading the object a URL names (through selectors, so what a
user may not see is a 404), turning domain errors into pages, and the URLs of objects."""

from functools import wraps

from django.shortcuts import render
from django.urls import reverse

from .. import selectors
from ..errors import Forbidden, InvalidInput, NotFound, RegistryError
from ..models import Catalog, Experiment, ModelVersion, RegisteredModel, Schema

KINDS = ("catalog", "schema", "model", "version")


def error_page(request, status, message):
    """The 403/404 page (inside the layout). For htmx, the error replaces the page's #main."""
    response = render(request, f"{status}.html", {"message": message}, status=status)
    if getattr(request, "htmx", False):
        response["HX-Retarget"] = "#main"
        response["HX-Reswap"] = "outerHTML"
        response["HX-Reselect"] = "#main"
    return response


def domain_errors(view):
    """NotFound → 404 page; Forbidden → 403 page naming the missing privilege; bad input no form
    field could hold (a tampered hidden field, a version number in the URL) → 400 page."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except NotFound as exc:
            return error_page(request, 404, exc.message)
        except Forbidden as exc:
            return error_page(request, 403, exc.message)
        except InvalidInput as exc:
            return error_page(request, 400, exc.message)
        except RegistryError as exc:  # e.g. jobs.BackgroundUnavailable: 503, nothing changed
            return error_page(request, exc.status, exc.message)

    return wrapper


def load(user, kind, catalog=None, schema=None, model=None, version=None, experiment_id=None):
    """The object a URL names, as `user` may see it (NotFound otherwise)."""
    if kind == "experiment":
        from .. import runs

        return runs.experiment_get(user, experiment_id)
    if kind == "catalog":
        return selectors.catalog_get(user, catalog)
    if kind == "schema":
        return selectors.schema_get(user, catalog, schema)
    full_name = f"{catalog}.{schema}.{model}"
    if kind == "model":
        return selectors.model_get(user, full_name)
    return selectors.version_get(user, full_name, version)


def url_args(obj):
    """URL arguments of an object, from names already loaded (no query)."""
    if isinstance(obj, Catalog):
        return [obj.name]
    if isinstance(obj, Schema):
        return [obj.catalog.name, obj.name]
    if isinstance(obj, RegisteredModel):
        return obj.full_name.split(".")
    if isinstance(obj, ModelVersion):
        return [*obj.model.full_name.split("."), obj.version]
    if isinstance(obj, Experiment):
        return [obj.pk]
    raise TypeError(obj)


def kind_of(obj):
    return {Catalog: "catalog", Schema: "schema", RegisteredModel: "model", ModelVersion: "version",
            Experiment: "experiment"}[type(obj)]


def page_url(obj, **query):
    url = reverse(kind_of(obj), args=url_args(obj))
    if query:
        from urllib.parse import urlencode

        url += "?" + urlencode(query)
    return url


def edit_url(obj, verb):
    return reverse(f"{kind_of(obj)}_{verb}", args=url_args(obj))


def breadcrumb(obj):
    """[(label, url)] from the catalog down to `obj`."""
    if isinstance(obj, Catalog):
        return [(obj.name, page_url(obj))]
    if isinstance(obj, Schema):
        return [*breadcrumb(obj.catalog), (obj.name, page_url(obj))]
    if isinstance(obj, RegisteredModel):
        c, s, m = obj.full_name.split(".")
        return [
            (c, reverse("catalog", args=[c])),
            (s, reverse("schema", args=[c, s])),
            (m, reverse("model", args=[c, s, m])),
        ]
    return [*breadcrumb(obj.model), (f"Version {obj.version}", page_url(obj))]
