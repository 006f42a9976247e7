"""The MLflow REST surface the stock client talks to (issue 4; spec: MLFLOW_API.md).

- `/api/2.0/mlflow/` registry (`views.py`): registered-models/*, model-versions/*, aliases, tags,
  search (MLflow's grammar, `registry/search.py`), get-download-uri. Names are
  `catalog.schema.model`; versions are strings, timestamps ms, `current_stage` always "None";
  prompts (`mlflow.prompt.is_prompt = true`) are hidden from every model read.
- `/api/2.0/mlflow/` tracking (`tracking_views.py`, domain in `registry/tracking.py`):
  experiments (Default "0" created on first use), runs, params, metrics, inputs/outputs,
  logged models, run search (attributes, tags, params, latest metric values).
- `/api/2.0/mlflow-artifacts/artifacts[/<path>]` (`artifacts.py`, domain in
  `registry/artifacts_proxy.py`): PUT/GET/list of run and logged-model files under
  `mlartifacts/…`, read-only files of registered versions under `registered-models/<name>/<v>`.
- `/api/3.0/mlflow/*`: JSON 404 (no multipart uploads).

Who may do what: the registry follows Unity Catalog's privileges (`registry/permissions.py`);
experiments are securables with an owner and grants (EXECUTE: see it and its runs; MODIFY: log
runs into it), runs and logged models follow their experiment (Default experiment shared, its runs
private), see the tracking section of `registry/permissions.py`. `model-versions/create` sources
are validated in `registry/sources.py` and registered by the jobs in `registry/jobs.py`.
Auth: HTTP basic (MLFLOW_TRACKING_USERNAME/PASSWORD) or Bearer (MLFLOW_TRACKING_TOKEN); writes
must be JSON (400 otherwise); errors are `{"error_code", "message"}` with MLflow's codes.
"""
