from django.urls import include, path

urlpatterns = [
    path("2.1/unity-catalog/", include("registry.api.uc.urls")),
    path("2.0/mlflow/", include("registry.api.mlflow.urls")),
]
