"""URLs of background jobs and version files (issue 3): everything under /jobs/, so no page
URL of the registry can collide with them."""

from django.urls import path

from . import views_jobs as v

M = "<str:catalog>/<str:schema>/<str:model>"
V = M + "/<int:version>"

urlpatterns = [
    path("jobs/", v.job_list, name="jobs"),
    path("jobs/<int:job_id>/progress/", v.job_progress, name="job_progress"),
    path(f"jobs/model/{M}/progress/", v.model_progress, name="jobs_model_progress"),
    path(f"jobs/version/{V}/progress/", v.version_progress, name="jobs_version_progress"),
    path(f"jobs/version/{V}/copy/", v.version_copy, name="jobs_version_copy"),
    path(f"jobs/version/{V}/files.zip", v.version_zip, name="jobs_version_zip"),
    path(f"jobs/version/{V}/files/<path:path>", v.file_download, name="jobs_file_download"),
]
