"""Unity Catalog REST, under /api/2.1/unity-catalog/. Full names contain dots, never slashes."""

from django.urls import path, re_path

from ..base import EndpointNotFoundView
from ..errors import UC
from . import views

urlpatterns = [
    path("catalogs", views.CatalogsView.as_view(), name="uc-catalogs"),
    path("catalogs/<str:name>", views.CatalogView.as_view(), name="uc-catalog"),
    path("schemas", views.SchemasView.as_view(), name="uc-schemas"),
    path("schemas/<str:full_name>", views.SchemaView.as_view(), name="uc-schema"),
    path("models", views.ModelsView.as_view(), name="uc-models"),
    path("models/<str:full_name>", views.ModelView.as_view(), name="uc-model"),
    path("models/<str:full_name>/versions", views.VersionsView.as_view(), name="uc-versions"),
    path("models/<str:full_name>/versions/<str:version>", views.VersionView.as_view(), name="uc-version"),
    path("models/<str:full_name>/versions/<str:version>/lineage", views.VersionLineageView.as_view(), name="uc-version-lineage"),
    path("permissions/<str:securable_type>/<str:full_name>", views.PermissionsView.as_view(), name="uc-permissions"),
    re_path(r"^.*$", EndpointNotFoundView.as_view(error_style=UC), name="uc-unknown"),
]
