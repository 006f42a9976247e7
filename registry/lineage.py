"""Lineage of a model version (PRODUCT.md §2): where it came from and where it went.

    datasets ─▶ run ─▶ [copied from] ─▶ this version ─▶ copies

Derived on the server, never sent by clients:

- **datasets**: what the registration recorded (`VersionInput`: the run's `mlflow.log_input`
  datasets when the version was registered, carried along by copies), together with what the
  version's run has logged since (so a `log_input` after `log_model(registered_model_name=…)`
  still shows). They are version metadata, like the signature: whoever sees the version sees
  them, even without seeing the run — the registrant could see the run and published them.
- **run**: the version's `run_id` (validated against the registrant's visibility when the version
  was created). Its id is part of the version anyway; its name and experiment only for a user
  who may see the run (`permissions.q_tracking_visible`).
- **copied from**: the version this one was copied from (`ModelVersion.copied_from`), named
  only when the user may see it; otherwise it is "a version you cannot see" (`visible=False`,
  no name, no number, no status).
- **copies**: versions copied from this one that the user may see, filtered in the database;
  the others are only counted (`hidden_copies`), never named.

The number of queries is constant, whatever the number of datasets or copies: six at most (the
recorded inputs, the run's inputs, the run with its visibility, the copied-from version through
the visibility filter, the visible copies, the count of all copies), plus one when the version's
model was not loaded through `selectors` (whose capability annotations answer `require`).
"""

import json
from dataclasses import asdict, dataclass, field

from django.db.models import BooleanField, Case, ExpressionWrapper, Value, When

from .models import ModelVersion, Run, RunInput
from .permissions import q_tracking_visible, require, visible

CONTEXT_TAG = "mlflow.data.context"


@dataclass
class DatasetNode:
    name: str
    digest: str = ""
    source_type: str = ""
    source: str = ""
    context: str = ""  # "training", "eval"… (the `mlflow.data.context` tag)

    @property
    def source_label(self):
        return source_label(self.source)


@dataclass
class RunNode:
    run_id: str
    visible: bool = False  # the user may see the run: name, experiment, link
    exists: bool = False  # the run is in this server's tracking store (visible or not)
    name: str = ""
    status: str = ""
    experiment_id: int | None = None
    experiment_name: str = ""

    def as_dict(self):
        data = {"run_id": self.run_id, "visible": self.visible}
        if self.visible:
            data.update(run_name=self.name, status=self.status, experiment_id=str(self.experiment_id),
                        experiment_name=self.experiment_name)
        return data


@dataclass
class VersionNode:
    visible: bool
    full_name: str = ""  # the model's catalog.schema.model; empty when not visible
    version: int | None = None
    status: str = ""

    @classmethod
    def of(cls, version):
        return cls(visible=True, full_name=version.model.full_name, version=version.version, status=version.status)

    @property
    def url_parts(self):
        return [*self.full_name.split("."), self.version] if self.visible else []

    def as_dict(self):
        if not self.visible:
            return {"visible": False}
        return {"visible": True, "full_name": self.full_name, "version": self.version, "status": self.status}


@dataclass
class Lineage:
    version: VersionNode
    datasets: list = field(default_factory=list)
    run: RunNode | None = None
    copied_from: VersionNode | None = None
    copies: list = field(default_factory=list)
    hidden_copies: int = 0

    def as_dict(self):
        return {
            "model_version": self.version.as_dict(),
            "datasets": [asdict(d) for d in self.datasets],
            "run": self.run.as_dict() if self.run else None,
            "copied_from": self.copied_from.as_dict() if self.copied_from else None,
            "copies": [c.as_dict() for c in self.copies],
            "hidden_copies": self.hidden_copies,
        }


def source_label(source):
    """A dataset's source for people: MLflow sends it as JSON (`{"uri": "s3://…"}`,
    `{"delta_table_name": "…"}`, …); show the one telling value, or the text as it is."""
    try:
        data = json.loads(source)
    except (TypeError, ValueError):
        return source
    if isinstance(data, dict):
        for key in ("uri", "url", "path", "delta_table_name", "table_name", "table", "hf_path", "sql"):
            if isinstance(data.get(key), str) and data[key]:
                return data[key]
        tags = data.get("tags")  # a "code" source (mlflow.data.from_pandas without one): the script
        if isinstance(tags, dict) and isinstance(tags.get("mlflow.source.name"), str):
            return tags["mlflow.source.name"]
    return source


def _context(tags):
    for tag in tags or []:
        if isinstance(tag, dict) and tag.get("key") == CONTEXT_TAG:
            return str(tag.get("value") or "")
    return ""


def _datasets(version, run_id):
    """Recorded inputs, then what the run logged that was not recorded. Two queries at most."""
    found, seen = [], set()

    def add(node):
        key = (node.name, node.digest, node.context)
        if key not in seen:
            seen.add(key)
            found.append(node)

    for row in version.lineage_inputs.all().order_by("id"):
        add(DatasetNode(row.name, row.digest, row.source_type, row.source, row.context))
    if run_id:
        rows = RunInput.objects.filter(run__run_uuid=run_id).select_related("dataset").order_by("id")
        for row in rows:
            d = row.dataset
            add(DatasetNode(d.name, d.digest, d.source_type, d.source, _context(row.tags)))
    return found


def _run(user, run_id):
    if not run_id:
        return None
    may_see = q_tracking_visible(user, "run")
    may_see = Case(When(may_see, then=Value(True)), default=Value(False)) if may_see else Value(True)  # Q(): all
    row = (
        Run.objects.filter(run_uuid=run_id)
        .select_related("experiment")
        .annotate(user_may_see=ExpressionWrapper(may_see, output_field=BooleanField()))
        .first()
    )
    if row is None:
        return RunNode(run_id=run_id)
    if not row.user_may_see:
        return RunNode(run_id=run_id, exists=True)
    return RunNode(run_id=run_id, visible=True, exists=True, name=row.name, status=row.status,
                   experiment_id=row.experiment_id, experiment_name=row.experiment.name)


def _copied_from(user, version):
    if not version.copied_from_id:
        return None
    source = visible(user, ModelVersion.objects.filter(pk=version.copied_from_id)).select_related("model").first()
    return VersionNode.of(source) if source is not None else VersionNode(visible=False)


def version_lineage(*, user, version):
    """The lineage of `version` as `user` may see it (NotFound if the version is invisible)."""
    require(user, "model.read", version.model)
    copies_qs = ModelVersion.objects.filter(copied_from=version)
    copies = list(visible(user, copies_qs).select_related("model").order_by("model__full_name", "version"))
    total = copies_qs.count()
    return Lineage(
        version=VersionNode.of(version),
        datasets=_datasets(version, version.run_id),
        run=_run(user, version.run_id),
        copied_from=_copied_from(user, version),
        copies=[VersionNode.of(c) for c in copies],
        hidden_copies=max(0, total - len(copies)),
    )
