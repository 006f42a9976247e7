"""The tracking pages: experiments → runs table → run page with Register model (issue 4).
Parse → `registry.runs` (reads, permission-filtered in the database) → render. Registering
calls `runs.version_register_from_run`, which goes through `sources.version_register` like the
MLflow API's `model-versions/create`; the server decides every permission again."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from .. import forms, permissions, runs, selectors
from ..errors import AlreadyExists, Forbidden, InvalidInput, NotFound, RegistryError
from ..views_jobs import _attachment_headers
from .browse import _permissions_context, _tab
from .common import domain_errors, load, page_url

RUNS_PAGE_SIZE = 50
EXPERIMENT_TABS = ("runs", "permissions")
RUN_TABS = ("overview", "artifacts")
TAB_LABELS = {"runs": "Runs", "permissions": "Permissions", "overview": "Overview", "artifacts": "Artifacts"}


def _labels(tabs):
    return [(key, TAB_LABELS[key]) for key in tabs]


def _crumbs(experiment=None, run=None):
    items = [("Experiments", reverse("experiments"))]
    if experiment is not None:
        items.append((experiment.name, reverse("experiment", args=[experiment.pk])))
    if run is not None:
        items.append((run.name or run.run_uuid, reverse("run", args=[experiment.pk, run.run_uuid])))
    return items


# --- Experiments ------------------------------------------------------------------------------
@require_safe
@login_required
def experiments(request):
    return render(request, "tracking/experiments.html", {
        "experiments": runs.experiments_with_counts(request.user),
        "crumbs": _crumbs(),
    })


@require_safe
@login_required
@domain_errors
def experiment(request, experiment_id):
    obj = load(request.user, "experiment", experiment_id=experiment_id)
    return render_experiment(request, obj)


def render_experiment(request, obj, *, status=200, tab=None, **overrides):
    """The runs table (key params and latest metrics as columns, paginated, filterable with
    MLflow's run search grammar), or the Permissions tab. Constant queries per page."""
    user = request.user
    tab = _tab(request, EXPERIMENT_TABS, tab)
    context = {
        "obj": obj,
        "experiment": obj,
        "kind": "experiment",
        "tab": tab,
        "tab_list": _labels(EXPERIMENT_TABS),
        "crumbs": _crumbs(obj),
        "can_manage": permissions.can(user, "experiment.manage", obj),
    }
    if tab == "permissions":
        context.update(_permissions_context(request, obj, "experiment", "experiment", overrides))
    else:
        filter_string = request.GET.get("filter", "")[:1000].strip()
        order = request.GET.get("order", "")[:300].strip()
        try:
            queryset = runs.experiment_runs(user, obj, filter_string, order)
        except InvalidInput as exc:
            context["filter_error"] = exc.message
            queryset = runs.experiment_runs(user, obj)
        page = Paginator(queryset, RUNS_PAGE_SIZE).get_page(request.GET.get("page"))
        page.object_list = list(page.object_list)
        param_keys, metric_keys = runs.key_columns(page.object_list)
        runs.fill_columns(page.object_list, param_keys, metric_keys)
        context.update({
            "page": page, "filter": filter_string, "order": order,
            "columns": _sort_columns(order, [("attributes.run_name", "Run", "ASC"), ("attributes.status", "Status", "ASC"),
                                             ("attributes.start_time", "Started", "DESC")]),
            "param_columns": _sort_columns(order, [(f"params.`{k}`", k, "ASC") for k in param_keys]),
            "metric_columns": _sort_columns(order, [(f"metrics.`{k}`", k, "DESC") for k in metric_keys]),
        })
    return render(request, "tracking/experiment.html", context, status=status)


def _sort_columns(order, columns):
    """[{key, label, order (the `order` a click on the header asks for, None when the key cannot
    be written in the grammar), state (ascending, descending, none)}] for the runs table."""
    current, _, direction = order.rpartition(" ") if " " in order else (order, "", "ASC")
    result = []
    for key, label, first in columns:
        state = "none"
        if current == key:
            state = "descending" if direction.upper() == "DESC" else "ascending"
        flip = "ASC" if state == "descending" else "DESC" if state == "ascending" else first
        result.append({"key": key, "label": label, "state": state,
                       "order": None if key.count("`") > 2 else f"{key} {flip}"})
    return result


# --- One run ----------------------------------------------------------------------------------
def _load_run(request, experiment_id, run_id):
    exp = load(request.user, "experiment", experiment_id=experiment_id)
    return exp, runs.run_get(request.user, exp, run_id)


def _register_form(user, run, details, artifacts, data=None):
    models, schemas = runs.register_targets(user)
    form = forms.RegisterFromRunForm(
        data,
        sources=runs.register_sources(run, details["logged_models"], artifacts),
        models=[m.full_name for m in models],
        schemas=[s.full_name for s in schemas],
    )
    form.target_count = len(models) + len(schemas)
    return form


@require_safe
@login_required
@domain_errors
def run(request, experiment_id, run_id):
    exp, obj = _load_run(request, experiment_id, run_id)
    return render_run(request, exp, obj)


def render_run(request, exp, obj, *, status=200, register_form=None):
    user = request.user
    tab = _tab(request, RUN_TABS)
    path = request.GET.get("path", "").strip("/")[:1000] if tab == "artifacts" else ""
    details = runs.run_details(user, obj)
    top = runs.run_artifacts(user, obj)
    artifacts, artifact_error = top, None
    if path:
        try:
            artifacts = runs.run_artifacts(user, obj, path)
        except InvalidInput as exc:
            artifacts, artifact_error = [], exc.message
    context = {
        "experiment": exp,
        "run": obj,
        "tab": tab,
        "tab_list": _labels(RUN_TABS),
        "crumbs": _crumbs(exp, obj),
        "path": path,
        "path_parts": _path_parts(path),
        "artifacts": artifacts,
        "artifact_error": artifact_error,
        "artifact_uri": f"runs:/{obj.run_uuid}",
        "register_form": register_form or _register_form(user, obj, details, top),
        "register_open": register_form is not None or request.GET.get("register") == "1",
        "register_url": reverse("run_register", args=[exp.pk, obj.run_uuid]),
        **details,
    }
    return render(request, "tracking/run.html", context, status=status)


def _path_parts(path):
    """[(label, path)] for the artifact folder breadcrumb."""
    parts, acc = [], []
    for part in path.split("/") if path else []:
        acc.append(part)
        parts.append((part, "/".join(acc)))
    return parts


@require_safe
@login_required
@domain_errors
def run_artifact(request, experiment_id, run_id, path):
    """One artifact of a run, always as an attachment (never rendered by the browser)."""
    _exp, obj = _load_run(request, experiment_id, run_id)
    handle, name = runs.run_artifact_file(request.user, obj, path)
    response = FileResponse(handle, as_attachment=True, filename=name, content_type="application/octet-stream")
    return _attachment_headers(response)


# --- Register model ---------------------------------------------------------------------------
@require_POST
@login_required
@domain_errors
def run_register(request, experiment_id, run_id):
    """Register a model of this run into a model the user owns, or a new one; then the target
    model's page, where the job's progress shows. Bad input: the run page with the dialog open
    and the error next to its field; nothing changed."""
    exp, obj = _load_run(request, experiment_id, run_id)
    details = runs.run_details(request.user, obj)
    form = _register_form(request.user, obj, details, runs.run_artifacts(request.user, obj), data=request.POST)
    status = 400
    target = _register_target(request.user, form) if form.is_valid() else None
    if target is not None:
        data = form.cleaned_data
        try:
            version = runs.version_register_from_run(
                actor=request.user, run=obj, source=form.source_uri(obj.run_uuid), **target,
            )
            return redirect(page_url(version.model) + "#model-jobs")
        except Forbidden as exc:
            form.add_error("model" if data["target"] == "existing" else "schema", exc.message)
            status = 403
        except AlreadyExists as exc:
            form.add_error("name", exc.message)
        except InvalidInput as exc:
            field = "name" if data["target"] == "new" and "model name" in exc.message else None
            form.add_error(field or ("path" if data["source"] == form.OTHER_PATH else "source"), exc.message)
        except NotFound as exc:  # the source names something this user cannot see
            form.add_error("path" if data["source"] == form.OTHER_PATH else "source", exc.message)
        except RegistryError as exc:  # background work unavailable: nothing changed
            form.add_error(None, exc.message)
            status = exc.status
    return render_run(request, exp, obj, status=status, register_form=form)


def _register_target(user, form):
    """{model} or {schema, new_model} as the form names them and `user` may see them; None
    (with the error next to the field) for anything else."""
    data = form.cleaned_data
    try:
        if data["target"] == "existing":
            return {"model": selectors.model_get(user, data["model"])}
        catalog, _, schema = data["schema"].partition(".")
        return {"schema": selectors.schema_get(user, catalog, schema), "new_model": data["name"]}
    except NotFound:
        if data["target"] == "existing":
            form.add_error("model", "Choose one of the models you own.")
        else:
            form.add_error("schema", "Choose a schema where you may create models.")
        return None
