"""`manage.py rewrite_model_docs [--missing]`: rewrite each model's kept MLflow JSON (registry/docs.py)."""

from django.core.management.base import BaseCommand

from registry import docs


class Command(BaseCommand):
    help = (
        "Rewrite every registered model's kept MLflow JSON (what model searches copy) from its rows. "
        "The registry's own writes keep them current; run this after changing rows by hand in SQL. "
        "--missing: only the models without a usable one (as `migrate` does)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--missing", action="store_true", help="Only models without a usable doc.")

    def handle(self, *args, missing, **options):
        count = docs.rebuild(every=not missing)
        self.stdout.write(f"{count} model docs written.")
