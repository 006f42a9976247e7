"""MLflow's JSON shapes (the protobuf JSON the stock client parses): versions as strings,
timestamps in epoch milliseconds (the registry rows carry them so: `db.EpochMs`),
`current_stage: "None"` (Unity Catalog has no stages)."""

import re

from registry import tracking

_LOGGED_MODEL_SOURCE = re.compile(r"^models:/(m-[0-9a-f]{32})/?$")




def _username(user):
    return user.username if user else ""


def _tags(rows):
    return [{"key": t.key, "value": t.value} for t in rows]


def version_out(version):
    """A version row (`selectors.VERSION_COLUMNS` with its model's `name`, and the `tags` and
    `aliases` of `selectors.registry_version_rows`)."""
    out = {
        "name": version["name"],
        "version": str(version["version"]),
        "creation_timestamp": version["created_ms"],
        "last_updated_timestamp": version["updated_ms"],
        "user_id": version["user_id"],
        "current_stage": "None",
        "description": version["description"],
        "source": version["source"],
        "run_id": version["run_id"],
        "status": version["status"],
        "tags": [{"key": k, "value": v} for k, v in version["tags"]],
        "run_link": version["run_link"],
        "aliases": version["aliases"],
    }
    if version["status_message"]:
        out["status_message"] = version["status_message"]
    logged = _LOGGED_MODEL_SOURCE.match(version["source"] or "")
    if logged:
        out["model_id"] = logged.group(1)  # MLflow 3: the logged model this version came from
    return out


def model_out(model):
    """A model row of `selectors.registry_model_rows`: `MODEL_COLUMNS`, its newest version as
    `latest` (or None), `tags` and `aliases`."""
    return {
        "name": model["full_name"],
        "creation_timestamp": model["created_ms"],
        "last_updated_timestamp": model["updated_ms"],
        "user_id": model["user_id"],
        "description": model["description"],
        "latest_versions": [version_out(model["latest"])] if model["latest"] is not None else [],
        "tags": [{"key": k, "value": v} for k, v in model["tags"]],
        "aliases": [{"alias": name, "version": str(number)} for name, number in model["aliases"]],
    }


# --- Tracking ---------------------------------------------------------------------------------
def experiment_out(exp):
    return {
        "experiment_id": str(exp.pk),
        "name": exp.name,
        "artifact_location": tracking.artifact_location(exp),
        "lifecycle_stage": exp.lifecycle_stage,
        "last_update_time": exp.last_update_time,
        "creation_time": exp.creation_time,
        "tags": _tags(exp.tags.all()),
    }


def metric_out(m):
    return {"key": m.key, "value": "NaN" if m.is_nan else m.value, "timestamp": m.timestamp, "step": m.step}


def run_info_out(run):
    info = {
        "run_id": run.run_uuid,
        "run_uuid": run.run_uuid,
        "run_name": run.name,
        "experiment_id": str(run.experiment_id),
        "user_id": _username(run.owner),
        "status": run.status,
        "start_time": run.start_time,
        "artifact_uri": tracking.run_artifact_uri(run),
        "lifecycle_stage": run.lifecycle_stage,
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def run_out(run):
    return {
        "info": run_info_out(run),
        "data": {
            "metrics": [metric_out(m) for m in tracking.latest_metrics(run)],
            "params": [{"key": p.key, "value": p.value} for p in run.params.all()],
            "tags": _tags(run.tags.all()),
        },
        "inputs": {
            "dataset_inputs": [
                {
                    "tags": i.tags,
                    "dataset": {
                        "name": i.dataset.name, "digest": i.dataset.digest, "source_type": i.dataset.source_type,
                        "source": i.dataset.source, "schema": i.dataset.schema, "profile": i.dataset.profile,
                    },
                }
                for i in run.inputs.select_related("dataset")
            ],
        },
        "outputs": {
            "model_outputs": [{"model_id": o.logged_model.model_id, "step": o.step}
                              for o in run.outputs.select_related("logged_model")],
        },
    }


def logged_model_out(logged):
    return {
        "info": {
            "model_id": logged.model_id,
            "experiment_id": str(logged.experiment_id),
            "name": logged.name,
            "creation_timestamp_ms": logged.creation_timestamp,
            "last_updated_timestamp_ms": logged.last_updated_timestamp,
            "artifact_uri": tracking.logged_model_uri(logged),
            "status": logged.status,
            "model_type": logged.model_type,
            "source_run_id": logged.source_run_id,
            "status_message": logged.status_message,
            "tags": _tags(logged.tags.all()),
        },
        "data": {"params": [{"key": p.key, "value": p.value} for p in logged.params.all()], "metrics": []},
    }
