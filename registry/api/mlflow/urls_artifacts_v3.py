"""/api/3.0/mlflow/: nothing yet; a JSON 404 (ENDPOINT_NOT_FOUND) makes the client fall back to
the 2.0 API and single-request uploads."""

from django.urls import re_path

from .views import UnknownEndpoint

urlpatterns = [re_path(r"^.*$", UnknownEndpoint.as_view())]
