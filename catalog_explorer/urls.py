from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    # The MLflow REST API first and one level up (not inside "api/"): what the stock client calls
    # all day, each level of includes a served request walks cost ~10 µs.
    path("api/2.0/mlflow/", include("registry.api.mlflow.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("registry.api.urls")),
    path("", include("registry.urls_jobs")),
    path("", include("registry.urls")),
]

# Pages for errors raised outside the page views (unknown URLs, CSRF failures), in the layout.
handler403 = "registry.views.errors.forbidden"
handler404 = "registry.views.errors.not_found"
handler500 = "registry.views.errors.server_error"
