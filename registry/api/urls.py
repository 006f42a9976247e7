from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny

from .base import EndpointNotFoundView

# MLflow's REST API (2.0/mlflow/) is mounted by the project's URLconf itself, ahead of this one.
urlpatterns = [
    path("2.1/unity-catalog/", include("registry.api.uc.urls")),
    # MLflow's artifact proxy and its 3.0 probe (issue 4).
    path("2.0/mlflow-artifacts/", include("registry.api.mlflow.urls_artifacts")),
    path("3.0/mlflow/", include("registry.api.mlflow.urls_artifacts_v3")),
    # The OpenAPI document is public on purpose: it describes routes, never data.
    path(
        "schema/",
        SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[AllowAny]),
        name="api-schema",
    ),
    # Anything else under /api/: a JSON 404 (MLflow's ENDPOINT_NOT_FOUND), not an HTML page.
    re_path(r"^.*$", EndpointNotFoundView.as_view(), name="api-unknown"),
]
