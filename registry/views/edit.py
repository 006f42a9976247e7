"""Every write from the pages: parse the form → call one service → redirect to the page (or,
for htmx, send back the part of the page that changed). The services check privileges again:
a hidden button is a courtesy, the service call is the rule. Bad input comes back as the same
page with the error next to the field (status 400) and what was typed kept."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from .. import forms, permissions, selectors, services
from ..errors import AlreadyExists, InvalidInput, NotFound
from . import browse, runs
from .common import domain_errors, kind_of, load, page_url

RENDERERS = {
    "catalog": browse.render_catalog,
    "schema": browse.render_schema,
    "model": browse.render_model,
    "version": browse.render_version,
    "experiment": runs.render_experiment,
}


def post_view(view):
    return require_POST(login_required(domain_errors(view)))


def _model_of(obj):
    return obj.model if kind_of(obj) == "version" else obj


def _back(obj, anchor="", **query):
    return redirect(page_url(obj, **query) + (f"#{anchor}" if anchor else ""))


# --- Creating -----------------------------------------------------------------------------
@post_view
def catalog_create(request):
    form = forms.CreateForm(request.POST)
    if form.is_valid():
        try:
            obj = services.catalog_create(actor=request.user, **form.cleaned_data)
            return _back(obj)
        except (InvalidInput, AlreadyExists) as exc:
            forms.add_domain_error(form, exc, "name")
    return browse.render_home(request, form=form, status=400)


@post_view
def schema_create(request, catalog):
    parent = load(request.user, "catalog", catalog)
    form = forms.CreateForm(request.POST)
    if form.is_valid():
        try:
            obj = services.schema_create(actor=request.user, catalog=parent, **form.cleaned_data)
            return _back(obj)
        except (InvalidInput, AlreadyExists) as exc:
            forms.add_domain_error(form, exc, "name")
    return browse.render_catalog(request, parent, status=400, create_form=form)


@post_view
def model_create(request, catalog, schema):
    parent = load(request.user, "schema", catalog, schema)
    form = forms.CreateForm(request.POST)
    if form.is_valid():
        try:
            obj = services.model_create(actor=request.user, schema=parent, **form.cleaned_data)
            return _back(obj)
        except (InvalidInput, AlreadyExists) as exc:
            forms.add_domain_error(form, exc, "name")
    return browse.render_schema(request, parent, status=400, create_form=form)


# --- Descriptions -------------------------------------------------------------------------
DESCRIPTION_SERVICES = {
    "catalog": lambda actor, obj, text: services.catalog_update(actor=actor, catalog=obj, description=text),
    "schema": lambda actor, obj, text: services.schema_update(actor=actor, schema=obj, description=text),
    "model": lambda actor, obj, text: services.model_update(actor=actor, model=obj, description=text),
    "version": lambda actor, obj, text: services.version_update(actor=actor, version=obj, description=text),
}


@post_view
def description(request, kind, **names):
    obj = load(request.user, kind, **names)
    form = forms.DescriptionForm(request.POST)
    status = 200
    if form.is_valid():
        try:
            DESCRIPTION_SERVICES[kind](request.user, obj, form.cleaned_data["description"])
            if not request.htmx:
                return _back(obj, "description")
            form = None
        except InvalidInput as exc:
            forms.add_domain_error(form, exc, "description")
    if form is not None:
        status = 400
    if request.htmx:
        context = browse.description_context(obj, can_edit=True, form=form)
        return render(request, "registry/partials/description.html", context, status=status)
    return RENDERERS[kind](request, obj, status=400, description_form=form)


# --- Tags ---------------------------------------------------------------------------------
def _tags_response(request, kind, obj, form, status):
    if request.htmx:
        if kind == "model":
            tags = selectors.model_tags(obj)
        else:
            tags = obj.tags.order_by("key")
        can_tag = permissions.can(request.user, "model.tag", _model_of(obj))
        context = browse.tags_context(obj, tags, can_tag=can_tag, form=form if status != 200 else None)
        return render(request, "registry/partials/tags.html", context, status=status)
    if status == 200:
        return _back(obj, "tags")
    return RENDERERS[kind](request, obj, status=status, tag_form=form)


@post_view
def tag_set(request, kind, **names):
    obj = load(request.user, kind, **names)
    form = forms.TagForm(request.POST)
    if form.is_valid():
        try:
            if kind == "model":
                services.model_tag_set(actor=request.user, model=obj, **form.cleaned_data)
            else:
                services.version_tag_set(actor=request.user, version=obj, **form.cleaned_data)
            return _tags_response(request, kind, obj, None, 200)
        except InvalidInput as exc:
            forms.add_domain_error(form, exc, "key")
    return _tags_response(request, kind, obj, form, 400)


@post_view
def tag_delete(request, kind, **names):
    obj = load(request.user, kind, **names)
    form = forms.TagDeleteForm(request.POST)
    if form.is_valid():
        try:
            if kind == "model":
                services.model_tag_delete(actor=request.user, model=obj, key=form.cleaned_data["key"])
            else:
                services.version_tag_delete(actor=request.user, version=obj, key=form.cleaned_data["key"])
        except InvalidInput:
            pass  # an empty key deletes nothing; the page shows the tags as they are
    return _tags_response(request, kind, obj, None, 200)


# --- Aliases ------------------------------------------------------------------------------
def _from_version(request):
    """The version page an alias form was sent from (to go back there), if any."""
    value = request.POST.get("from_version", "")
    return value if value.isdigit() and len(value) < 10 else None


@post_view
def alias_set(request, catalog, schema, model):
    obj = load(request.user, "model", catalog, schema, model)
    form = forms.AliasForm(request.POST)
    back_to = _from_version(request)
    if form.is_valid():
        try:
            services.alias_set(actor=request.user, model=obj, **form.cleaned_data)
            if back_to:
                return redirect(reverse("version", args=[catalog, schema, model, back_to]) + "#aliases")
            return _back(obj, "aliases")
        except (InvalidInput, NotFound) as exc:
            forms.add_domain_error(form, exc, "alias")
    if back_to:
        version = load(request.user, "version", catalog, schema, model, back_to)
        return browse.render_version(request, version, status=400, alias_form=form)
    return browse.render_model(request, obj, status=400, alias_form=form)


@post_view
def alias_delete(request, catalog, schema, model):
    obj = load(request.user, "model", catalog, schema, model)
    form = forms.AliasDeleteForm(request.POST)
    if form.is_valid():
        services.alias_delete(actor=request.user, model=obj, alias=form.cleaned_data["alias"])
    back_to = _from_version(request)
    if back_to:
        return redirect(reverse("version", args=[catalog, schema, model, back_to]) + "#aliases")
    return _back(obj, "aliases")


# --- Rename and delete --------------------------------------------------------------------
@post_view
def model_rename(request, catalog, schema, model):
    obj = load(request.user, "model", catalog, schema, model)
    form = forms.RenameForm(request.POST)
    if form.is_valid():
        try:
            obj = services.model_rename(actor=request.user, model=obj, new_name=form.cleaned_data["new_name"])
            return _back(obj)
        except (InvalidInput, AlreadyExists) as exc:
            forms.add_domain_error(form, exc, "new_name")
    return browse.render_model(request, obj, status=400, rename_form=form)


@post_view
def model_delete(request, catalog, schema, model):
    obj = load(request.user, "model", catalog, schema, model)
    permissions.require(request.user, "model.delete", obj)  # a 403 before asking to retype a name
    form = forms.ConfirmDeleteForm(request.POST, expected=obj.full_name)
    if form.is_valid():
        services.model_delete(actor=request.user, model=obj)
        return redirect("schema", catalog, schema)
    return browse.render_model(request, obj, status=400, delete_form=form)


@post_view
def version_delete(request, catalog, schema, model, version):
    obj = load(request.user, "version", catalog, schema, model, version)
    permissions.require(request.user, "model.delete", obj.model)
    form = forms.ConfirmDeleteForm(request.POST, expected=obj.full_name)
    if form.is_valid():
        services.version_delete(actor=request.user, version=obj)
        return redirect("model", catalog, schema, model)
    return browse.render_version(request, obj, status=400, delete_form=form)


# --- Grants and ownership -----------------------------------------------------------------
LEVELS = {"catalog": "catalog", "schema": "schema", "model": "model", "experiment": "experiment"}


@post_view
def grant(request, kind, **names):
    obj = load(request.user, kind, **names)
    form = forms.GrantForm(request.POST, level=LEVELS[kind])
    if form.is_valid():
        try:
            services.grants_change(
                actor=request.user, obj=obj,
                changes=[{"principal": form.cleaned_data["principal"], "add": [form.cleaned_data["privilege"]]}],
            )
            return _back(obj, "grants", tab="permissions")
        except InvalidInput as exc:
            forms.add_domain_error(form, exc, "principal")
    return RENDERERS[kind](request, obj, status=400, tab="permissions", grant_form=form)


@post_view
def revoke(request, kind, **names):
    obj = load(request.user, kind, **names)
    form = forms.RevokeForm(request.POST)
    if form.is_valid():
        try:
            services.grants_change(
                actor=request.user, obj=obj,
                changes=[{"principal": form.cleaned_data["principal"], "remove": [form.cleaned_data["privilege"]]}],
            )
        except InvalidInput as exc:
            grant_form = forms.GrantForm(request.POST, level=LEVELS[kind])
            return RENDERERS[kind](request, obj, status=400, tab="permissions",
                                   grant_form=forms.add_domain_error(grant_form, exc, "principal"))
    return _back(obj, "grants", tab="permissions")


@post_view
def owner(request, kind, **names):
    obj = load(request.user, kind, **names)
    form = forms.OwnerForm(request.POST)
    if form.is_valid():
        try:
            services.owner_transfer(actor=request.user, obj=obj, principal=form.cleaned_data["principal"])
        except InvalidInput as exc:
            forms.add_domain_error(form, exc, "principal")
        else:
            try:  # freshly, through the selector: the old owner may see nothing of it now
                return _back(load(request.user, kind, **names), "grants", tab="permissions")
            except NotFound:
                if kind == "experiment":
                    return redirect("experiments")
                parent = {"catalog": None, "schema": "catalog", "model": "schema"}[kind]
                return redirect("home") if parent is None else _back(getattr(obj, parent))
    return RENDERERS[kind](request, obj, status=400, tab="permissions", owner_form=form)
