"""The MLflow artifact proxy: PUT and GET `/api/2.0/mlflow-artifacts/artifacts/<path>` (raw bytes)
and GET `/api/2.0/mlflow-artifacts/artifacts?path=<dir>` (a listing). Which path names what,
and who may read or write it, is `registry.artifacts_proxy`'s decision.

Downloads are always `application/octet-stream` attachments with `nosniff`, so an uploaded
`evil.html` or `evil.svg` is never rendered by a browser.
"""

from django.http import FileResponse
from rest_framework.response import Response
from rest_framework.views import APIView

from registry import artifacts_proxy
from registry.errors import NotFound

from ..errors import MLFLOW


class ArtifactView(APIView):
    """Not `ApiView`: uploads are raw bytes with the file's own Content-Type, never parsed."""

    error_style = MLFLOW
    parser_classes = []

    def get(self, request, path=None):
        if path is None:
            location = artifacts_proxy.locate(request.user, request.query_params.get("path") or "")
            files = artifacts_proxy.list_dir(location)
            return Response({"files": files} if files else {})
        location = artifacts_proxy.locate(request.user, path)
        if not artifacts_proxy.is_file(location):
            raise NotFound(f"No artifact at {path[:300]!r}.")
        response = FileResponse(
            artifacts_proxy.open_file(location), as_attachment=True, filename=location.path.rsplit("/", 1)[-1],
            content_type="application/octet-stream",
        )
        response["X-Content-Type-Options"] = "nosniff"
        return response

    def put(self, request, path=None):
        if path is None:
            raise NotFound("PUT needs a file path.")
        location = artifacts_proxy.locate(request.user, path, write=True)
        artifacts_proxy.write(location, request._request)
        return Response({})
