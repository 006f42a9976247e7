"""MLflow REST under /api/2.0/mlflow/: the model registry (views.py) and tracking
(tracking_views.py), with the paths and methods the stock client uses."""

from django.urls import path, re_path

from . import tracking_views as t
from . import views as v

urlpatterns = [
    # Model registry: the reads a model server or a batch job repeats come first (Django tries
    # the routes in order, ~2 µs each in a served request).
    path("registered-models/get", v.GetModel.as_view()),
    path("registered-models/alias", v.AliasView.as_view()),
    path("model-versions/get", v.GetVersion.as_view()),
    path("model-versions/search", v.SearchVersions.as_view()),
    path("registered-models/search", v.SearchModels.as_view()),
    path("model-versions/get-download-uri", v.DownloadUri.as_view()),
    path("registered-models/create", v.CreateModel.as_view()),
    path("registered-models/rename", v.RenameModel.as_view()),
    path("registered-models/update", v.UpdateModel.as_view()),
    path("registered-models/delete", v.DeleteModel.as_view()),
    path("registered-models/get-latest-versions", v.LatestVersions.as_view()),
    path("registered-models/set-tag", v.ModelTagView.as_view(http_method_names=["post"])),
    path("registered-models/delete-tag", v.ModelTagView.as_view(http_method_names=["delete"])),
    path("model-versions/create", v.CreateVersion.as_view()),
    path("model-versions/update", v.UpdateVersion.as_view()),
    path("model-versions/delete", v.DeleteVersion.as_view()),
    path("model-versions/set-tag", v.VersionTagView.as_view(http_method_names=["post"])),
    path("model-versions/delete-tag", v.VersionTagView.as_view(http_method_names=["delete"])),
    path("model-versions/transition-stage", v.TransitionStage.as_view()),
    # Tracking
    path("experiments/get-by-name", t.ExperimentByName.as_view()),
    path("experiments/create", t.CreateExperiment.as_view()),
    path("experiments/get", t.GetExperiment.as_view()),
    path("experiments/search", t.SearchExperiments.as_view()),
    path("experiments/set-experiment-tag", t.SetExperimentTag.as_view()),
    path("runs/create", t.CreateRun.as_view()),
    path("runs/get", t.GetRun.as_view()),
    path("runs/update", t.UpdateRun.as_view()),
    path("runs/delete", t.DeleteRun.as_view()),
    path("runs/restore", t.RestoreRun.as_view()),
    path("runs/log-parameter", t.LogParam.as_view()),
    path("runs/log-metric", t.LogMetric.as_view()),
    path("runs/log-batch", t.LogBatch.as_view()),
    path("runs/set-tag", t.SetRunTag.as_view()),
    path("runs/delete-tag", t.DeleteRunTag.as_view()),
    path("runs/log-inputs", t.LogInputs.as_view()),
    path("runs/outputs", t.LogOutputs.as_view()),
    path("runs/search", t.SearchRuns.as_view()),
    path("metrics/get-history", t.MetricHistory.as_view()),
    path("logged-models", t.CreateLoggedModel.as_view()),
    path("logged-models/search", t.SearchLoggedModels.as_view()),
    path("logged-models/<str:model_id>", t.LoggedModelView.as_view()),
    path("logged-models/<str:model_id>/tags", t.LoggedModelTags.as_view()),
    path("logged-models/<str:model_id>/tags/<path:key>", t.LoggedModelTagDelete.as_view()),
    path("logged-models/<str:model_id>/params", t.LoggedModelParams.as_view()),
    re_path(r"^.*$", v.UnknownEndpoint.as_view()),
]
