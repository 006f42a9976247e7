"""/api/2.0/mlflow-artifacts/: the artifact proxy the stock client uploads to and downloads from."""

from django.urls import path, re_path

from .artifacts import ArtifactView
from .views import UnknownEndpoint

urlpatterns = [
    path("artifacts", ArtifactView.as_view()),
    path("artifacts/<path:path>", ArtifactView.as_view()),
    re_path(r"^.*$", UnknownEndpoint.as_view()),
]
