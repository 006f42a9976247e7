"""The product's routes, plus three views for the floors of `bench_api.py`:

- `GET /api/2.0/mlflow/benchmark/no-op` (the floor the targets use) answers `{}` through the
  API's whole stack — gunicorn, the API middleware, DRF, the Bearer token checked by its own
  query, the JSON renderer — and runs no registry code: what a read costs beyond it is ours.
  (Before round 9 the floor was an unknown endpoint's JSON 404, which also paid for a failed URL
  resolution, Django's 404 log line and the error handler.)
- `…/benchmark/bare`: a plain Django view answering `{}` (gunicorn, the API middleware and
  Django's request handling; no DRF, no token, no database).
- `…/benchmark/one-query`: the same plus one PostgreSQL round trip (`SELECT 1`): what a single
  statement costs a served request, whatever the statement.
Together they split the floor into server, framework and database round trip."""

from django.db import connection
from django.http import HttpResponse
from django.urls import path
from rest_framework.response import Response

from catalog_explorer.urls import urlpatterns as product_urlpatterns
from registry.api.mlflow.base import MlflowView


class NoOp(MlflowView):
    def get(self, request):
        return Response({})


def bare(request):
    return HttpResponse(b"{}", content_type="application/json")


def one_query(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return HttpResponse(b"{}", content_type="application/json")


urlpatterns = [
    path("api/2.0/mlflow/benchmark/no-op", NoOp.as_view()),
    path("api/2.0/mlflow/benchmark/bare", bare),
    path("api/2.0/mlflow/benchmark/one-query", one_query),
    *product_urlpatterns,
]
