"""The pages. Reading lives under /explore/ (one URL per object, tabs as ?tab=); every write is a
POST under /edit/<kind>/<object>/<verb>/, so no object name can ever collide with a verb."""

from django.contrib.auth import views as auth_views
from django.urls import path

from .views import accounts, browse, edit, runs

M = "<str:catalog>/<str:schema>/<str:model>"
V = M + "/<int:version>"

urlpatterns = [
    path("", browse.home, name="home"),
    path("search/", browse.search, name="search"),
    path("accounts/login/", accounts.GuardedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Pages
    path("explore/<str:catalog>/", browse.catalog, name="catalog"),
    path("explore/<str:catalog>/<str:schema>/", browse.schema, name="schema"),
    path(f"explore/{M}/", browse.model, name="model"),
    path(f"explore/{M}/versions/<int:version>/", browse.version, name="version"),
    # Experiments and runs (MLflow tracking)
    path("experiments/", runs.experiments, name="experiments"),
    path("experiments/<int:experiment_id>/", runs.experiment, name="experiment"),
    path("experiments/<int:experiment_id>/runs/<str:run_id>/", runs.run, name="run"),
    path("experiments/<int:experiment_id>/runs/<str:run_id>/artifacts/<path:path>", runs.run_artifact,
         name="run_artifact"),
    path("edit/run/<int:experiment_id>/<str:run_id>/register/", runs.run_register, name="run_register"),
    # Writes
    path("edit/catalogs/new/", edit.catalog_create, name="catalog_create"),
    path("edit/catalog/<str:catalog>/create-schema/", edit.schema_create, name="catalog_create_schema"),
    path("edit/schema/<str:catalog>/<str:schema>/create-model/", edit.model_create, name="schema_create_model"),
    path(f"edit/model/{M}/alias/", edit.alias_set, name="model_alias_set"),
    path(f"edit/model/{M}/alias/delete/", edit.alias_delete, name="model_alias_delete"),
    path(f"edit/model/{M}/rename/", edit.model_rename, name="model_rename"),
    path(f"edit/model/{M}/delete/", edit.model_delete, name="model_delete"),
    path(f"edit/version/{V}/delete/", edit.version_delete, name="version_delete"),
]

# The same verbs on several kinds of object.
_PREFIX = {
    "catalog": "<str:catalog>",
    "schema": "<str:catalog>/<str:schema>",
    "model": M,
    "version": V,
    "experiment": "<int:experiment_id>",
}
_VERBS = {
    "description": (edit.description, ("catalog", "schema", "model", "version")),
    "tag_set": (edit.tag_set, ("model", "version")),
    "tag_delete": (edit.tag_delete, ("model", "version")),
    "grant": (edit.grant, ("catalog", "schema", "model", "experiment")),
    "revoke": (edit.revoke, ("catalog", "schema", "model", "experiment")),
    "owner": (edit.owner, ("catalog", "schema", "model", "experiment")),
}
for _verb, (_view, _kinds) in _VERBS.items():
    for _kind in _kinds:
        urlpatterns.append(
            path(f"edit/{_kind}/{_PREFIX[_kind]}/{_verb.replace('_', '/')}/", _view, {"kind": _kind},
                 name=f"{_kind}_{_verb}")
        )
