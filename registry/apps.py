from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Model registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import docs
        from .db import cache_long_statements

        cache_long_statements()
        docs.connect(self)
