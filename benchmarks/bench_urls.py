"""The product's routes, plus `GET /api/2.0/mlflow/benchmark/no-op`: the floor of `bench_api.py`.

It answers `{}` through the API's whole stack — gunicorn, the API middleware, DRF, the Bearer
token checked by its own query, the JSON renderer — and runs no registry code: what a read costs
beyond it is ours. (Before round 9 the floor was an unknown endpoint's JSON 404, which also
paid for a failed URL resolution, Django's 404 log line and the error handler.)"""

from django.urls import path
from rest_framework.response import Response

from catalog_explorer.urls import urlpatterns as product_urlpatterns
from registry.api.mlflow.base import MlflowView


class NoOp(MlflowView):
    def get(self, request):
        return Response({})


urlpatterns = [path("api/2.0/mlflow/benchmark/no-op", NoOp.as_view()), *product_urlpatterns]
