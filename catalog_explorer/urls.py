from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("registry.api.urls")),
    path("", include("registry.urls_jobs")),
    path("", include("registry.urls")),
]
