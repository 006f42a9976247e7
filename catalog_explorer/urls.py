from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("registry.api.urls")),
    path("", include("registry.urls_jobs")),
    path("", include("registry.urls")),
]

# Pages for errors raised outside the page views (unknown URLs, CSRF failures), in the layout.
handler403 = "registry.views.errors.forbidden"
handler404 = "registry.views.errors.not_found"
handler500 = "registry.views.errors.server_error"
