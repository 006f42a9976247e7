"""MLflow tracking: experiments, runs, params, metrics, datasets, logged models (issue 4).
Imported by registry/models.py."""
