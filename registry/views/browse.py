"""The pages: home, catalog, schema, model, version, search. Each is parse → selectors →
render; the `render_*` functions are also used by the edit views to show a form's errors in
place (status 400) without losing what the person typed."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from .. import forms, lineage, permissions, selectors, services
from ..models import ModelVersion
from . import lineage_graph
from .common import breadcrumb, domain_errors, edit_url, load, page_url

TAB_LABELS = {"overview": "Overview", "permissions": "Permissions", "activity": "Activity", "files": "Files",
              "lineage": "Lineage"}
MODEL_TABS = ("overview", "permissions", "activity")
CONTAINER_TABS = ("overview", "permissions")
VERSION_TABS = ("overview", "files", "lineage")


def _tab_list(tabs):
    return [(key, TAB_LABELS[key]) for key in tabs]


def _tab(request, tabs, forced=None):
    tab = forced or request.GET.get("tab") or tabs[0]
    return tab if tab in tabs else tabs[0]


def _permissions_context(request, obj, kind, level, form_overrides):
    """The Permissions tab: grants (direct and inherited) and, for owners, the forms."""
    can_manage = permissions.can(request.user, f"{kind}.manage", obj)
    return {
        "grants": services.grants_on(obj),
        "can_manage": can_manage,
        "grant_form": form_overrides.get("grant_form") or forms.GrantForm(level=level),
        "owner_form": form_overrides.get("owner_form") or forms.OwnerForm(),
        "grant_url": edit_url(obj, "grant"),
        "revoke_url": edit_url(obj, "revoke"),
        "owner_url": edit_url(obj, "owner"),
    }


def description_context(obj, *, can_edit, form=None, editing=False):
    return {
        "obj": obj,
        "can_edit": can_edit,
        "editing": editing or bool(form is not None and form.errors),
        "description_form": form or forms.DescriptionForm(initial={"description": obj.description}),
        "description_url": edit_url(obj, "description"),
        "page_url": page_url(obj),
    }


def tags_context(obj, tags, *, can_tag, form=None):
    return {
        "obj": obj,
        "tags": tags,
        "can_tag": can_tag,
        "tag_form": form or forms.TagForm(),
        "tag_set_url": edit_url(obj, "tag_set"),
        "tag_delete_url": edit_url(obj, "tag_delete"),
    }


# --- Home ---------------------------------------------------------------------------------
@require_safe
@login_required
def home(request):
    return render_home(request)


def render_home(request, *, form=None, status=200):
    return render(
        request,
        "registry/home.html",
        {
            "catalogs": selectors.catalogs(request.user),
            "can_create_catalog": request.user.is_superuser,
            "create_form": form or forms.CreateForm(),
        },
        status=status,
    )


# --- Catalog ------------------------------------------------------------------------------
@require_safe
@login_required
@domain_errors
def catalog(request, catalog):
    obj = load(request.user, "catalog", catalog)
    return render_catalog(request, obj)


def render_catalog(request, obj, *, status=200, tab=None, **overrides):
    user = request.user
    tab = _tab(request, CONTAINER_TABS, tab)
    context = {
        "obj": obj,
        "kind": "catalog",
        "tab": tab,
        "tab_list": _tab_list(CONTAINER_TABS),
        "breadcrumb": breadcrumb(obj),
        "current": {"catalog": obj.name},
        "schemas": selectors.schemas_with_counts(user, obj),
        "can_create_schema": permissions.can(user, "catalog.create_schema", obj),
        "create_form": overrides.get("create_form") or forms.CreateForm(),
        **description_context(
            obj, can_edit=permissions.can(user, "catalog.edit", obj), form=overrides.get("description_form"),
            editing=request.GET.get("edit") == "description",
        ),
    }
    if tab == "permissions":
        context.update(_permissions_context(request, obj, "catalog", "catalog", overrides))
    return render(request, "registry/catalog.html", context, status=status)


# --- Schema -------------------------------------------------------------------------------
@require_safe
@login_required
@domain_errors
def schema(request, catalog, schema):
    obj = load(request.user, "schema", catalog, schema)
    if request.GET.get("part") == "tree":  # the side tree opening this schema (htmx)
        models, more = selectors.tree_models(request.user, obj.pk)
        context = {"models": models, "more": more, "schema": obj, "current": {},
                   "schema_url": reverse("schema", args=[obj.catalog.name, obj.name])}
        return render(request, "registry/partials/tree_models.html", context)
    return render_schema(request, obj)


MODELS_PAGE_SIZE = 50


def _models_page(request, user, schema):
    """One page of the schema's models (by name) with their version counts: counted for the
    page's rows only, so the page costs the same however many models the schema holds."""
    page = Paginator(selectors.models(user, schema), MODELS_PAGE_SIZE).get_page(request.GET.get("page"))
    counts = selectors.version_counts(page.object_list)
    for m in page.object_list:
        m.version_count = counts.get(m.pk, 0)
    return page


def render_schema(request, obj, *, status=200, tab=None, **overrides):
    user = request.user
    tab = _tab(request, CONTAINER_TABS, tab)
    context = {
        "obj": obj,
        "kind": "schema",
        "tab": tab,
        "tab_list": _tab_list(CONTAINER_TABS),
        "breadcrumb": breadcrumb(obj),
        "current": {"catalog": obj.catalog.name, "schema": obj.name},
        "models": _models_page(request, user, obj),
        "can_create_model": permissions.can(user, "schema.create_model", obj),
        "create_form": overrides.get("create_form") or forms.CreateForm(),
        **description_context(
            obj, can_edit=permissions.can(user, "schema.edit", obj), form=overrides.get("description_form"),
            editing=request.GET.get("edit") == "description",
        ),
    }
    if tab == "permissions":
        context.update(_permissions_context(request, obj, "schema", "schema", overrides))
    return render(request, "registry/schema.html", context, status=status)


# --- Model --------------------------------------------------------------------------------
@require_safe
@login_required
@domain_errors
def model(request, catalog, schema, model):
    obj = load(request.user, "model", catalog, schema, model)
    return render_model(request, obj)


def render_model(request, obj, *, status=200, tab=None, **overrides):
    """Constant queries whatever the number of versions: one page of versions with their
    creators and alias names in one query; capabilities come annotated on `obj`."""
    user = request.user
    tab = _tab(request, MODEL_TABS, tab)
    c, s, m = obj.full_name.split(".")
    size = settings.REGISTRY["VERSIONS_PAGE_SIZE"]
    paginator = Paginator(selectors.model_version_list(obj, size), size)
    versions = paginator.get_page(request.GET.get("page"))
    versions.object_list = selectors.alias_names(versions.object_list)
    aliases = list(selectors.model_aliases(obj))
    max_aliases = settings.REGISTRY["MAX_ALIASES_PER_MODEL"]
    delete_form = overrides.get("delete_form")
    context = {
        "obj": obj,
        "model": obj,
        "kind": "model",
        "tab": tab,
        "tab_list": _tab_list(MODEL_TABS),
        "breadcrumb": breadcrumb(obj),
        "current": {"catalog": c, "schema": s, "model": m},
        "parts": (c, s, m),
        "versions": versions,
        # Version pages are <model page>versions/<n>/ (urls.py): one reverse() per page, not per row.
        "versions_url": reverse("model", args=[c, s, m]) + "versions/",
        "version_count": paginator.count,
        "aliases": aliases,
        "aliases_left": max(0, max_aliases - len(aliases)),
        "max_aliases": max_aliases,
        "alias_form": overrides.get("alias_form") or forms.AliasForm(),
        "rename_form": overrides.get("rename_form") or forms.RenameForm(initial={"new_name": obj.name}),
        "renaming": request.GET.get("edit") == "rename" or "rename_form" in overrides,
        "delete_form": delete_form or forms.ConfirmDeleteForm(expected=obj.full_name),
        "delete_open": request.GET.get("confirm") == "delete" or delete_form is not None,
        "delete_url": edit_url(obj, "delete"),
        "delete_message": (
            f"Delete model {obj.full_name} and its {paginator.count} version{'s' if paginator.count != 1 else ''} "
            "and all their files? This cannot be undone."
        ),
        "alias_set_url": edit_url(obj, "alias_set"),
        "alias_delete_url": edit_url(obj, "alias_delete"),
        "rename_url": edit_url(obj, "rename"),
        "can": {
            action: permissions.can(user, f"model.{action}", obj)
            for action in ("edit", "tag", "alias", "rename", "delete", "manage")
        },
        **description_context(
            obj, can_edit=permissions.can(user, "model.edit", obj), form=overrides.get("description_form"),
            editing=request.GET.get("edit") == "description",
        ),
        **tags_context(
            obj, selectors.model_tags(obj), can_tag=permissions.can(user, "model.tag", obj),
            form=overrides.get("tag_form"),
        ),
    }
    if tab == "permissions":
        context.update(_permissions_context(request, obj, "model", "model", overrides))
    if tab == "activity":
        context["events"] = selectors.model_activity(obj)
    return render(request, "registry/model.html", context, status=status)


# --- Version ------------------------------------------------------------------------------
@require_safe
@login_required
@domain_errors
def version(request, catalog, schema, model, version):
    obj = load(request.user, "version", catalog, schema, model, version)
    return render_version(request, obj)


def render_version(request, obj, *, status=200, tab=None, **overrides):
    user = request.user
    model = obj.model
    tab = _tab(request, VERSION_TABS, tab)
    c, s, m = model.full_name.split(".")
    delete_form = overrides.get("delete_form")
    signature = obj.signature if isinstance(obj.signature, dict) else {}
    context = {
        "obj": obj,
        "version": obj,
        "model": model,
        "kind": "version",
        "tab": tab,
        "tab_list": _tab_list(VERSION_TABS),
        "breadcrumb": breadcrumb(obj),
        "current": {"catalog": c, "schema": s, "model": m},
        "parts": (c, s, m),
        "aliases": list(obj.aliases.all()),
        "inputs": [col for col in signature.get("inputs") or [] if isinstance(col, dict)],
        "outputs": [col for col in signature.get("outputs") or [] if isinstance(col, dict)],
        "alias_form": overrides.get("alias_form") or forms.AliasForm(initial={"version": obj.version}),
        "alias_set_url": edit_url(model, "alias_set"),
        "alias_delete_url": edit_url(model, "alias_delete"),
        "delete_form": delete_form or forms.ConfirmDeleteForm(expected=obj.full_name),
        "delete_open": request.GET.get("confirm") == "delete" or delete_form is not None,
        "delete_url": edit_url(obj, "delete"),
        "delete_message": (
            f"Delete version {obj.version} of {model.full_name} and all its files? Aliases pointing to it "
            "are removed too. This cannot be undone."
        ),
        "copied_from_visible": bool(obj.copied_from_id)
        and permissions.is_visible(user, obj.copied_from.model),
        "can": {
            action: permissions.can(user, f"model.{action}", model)
            for action in ("edit", "tag", "alias", "delete")
        },
        **description_context(
            obj, can_edit=permissions.can(user, "model.edit", model), form=overrides.get("description_form"),
            editing=request.GET.get("edit") == "description",
        ),
        **tags_context(
            obj, list(obj.tags.all()), can_tag=permissions.can(user, "model.tag", model),
            form=overrides.get("tag_form"),
        ),
    }
    if tab == "lineage":
        found = lineage.version_lineage(user=user, version=obj)
        context.update(lineage=found, graph=lineage_graph.build(found), run_href=lineage_graph.run_url(found.run),
                       experiment_href=lineage_graph.experiment_url(found.run))
    return render(request, "registry/version.html", context, status=status)


# --- Search -------------------------------------------------------------------------------
MODEL_SORTS = {"name": "full_name", "-name": "-full_name", "updated": "updated_at", "-updated": "-updated_at",
               "owner": "owner_user__username", "-owner": "-owner_user__username"}
VERSION_SORTS = {"name": "model__full_name", "-name": "-model__full_name", "version": "version",
                 "-version": "-version", "created": "created_at", "-created": "-created_at",
                 "status": "status", "-status": "-status", "creator": "created_by__username",
                 "-creator": "-created_by__username"}
SEARCH_PAGE_SIZE = 25


@require_safe
@login_required
def search(request):
    q = request.GET.get("q", "")[:200]
    facets = {key: request.GET.get(key, "")[:200] for key in ("catalog", "schema", "status", "tag", "alias", "creator")}
    models_qs, versions_qs = selectors.search(request.user, q, **{k: v or None for k, v in facets.items()})
    model_sort = request.GET.get("msort", "name")
    version_sort = request.GET.get("vsort", "-created")
    models_qs = models_qs.order_by(MODEL_SORTS.get(model_sort, "full_name"), "pk")
    versions_qs = versions_qs.order_by(VERSION_SORTS.get(version_sort, "-created_at"), "pk")
    model_page = Paginator(models_qs, SEARCH_PAGE_SIZE).get_page(request.GET.get("mpage"))
    version_page = Paginator(versions_qs, SEARCH_PAGE_SIZE).get_page(request.GET.get("vpage"))
    version_page.object_list = selectors.alias_names(version_page.object_list)
    return render(
        request,
        "registry/search.html",
        {
            "q": q,
            "facets": facets,
            "statuses": [s for s, _ in ModelVersion.STATUSES],
            "catalog_names": [c.name for c in selectors.catalogs(request.user)],
            "model_page": model_page,
            "version_page": version_page,
            "msort": model_sort if model_sort in MODEL_SORTS else "name",
            "vsort": version_sort if version_sort in VERSION_SORTS else "-created",
        },
    )
