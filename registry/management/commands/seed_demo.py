"""`manage.py seed_demo`: demo users and registry content, safe to run on every start.

Users: `admin` (superuser), `alice` and `bob`, each with a generated password printed once, when
the user is created (`ADMIN_PASSWORD` sets admin's instead). Later runs only say they exist.

Content goes through `registry.services`, like every other write, so it is audited and obeys
the same rules. Each object is created only when missing, and its grants, tags and aliases are
set only when it is created: running this again changes nothing, and never undoes what people
did in the UI since.

Who sees what:
  admin  everything (superuser)
  alice  owns iris_model in prod and staging; EXECUTE on the whole staging catalog, so she also
         sees staging.ml_team.fraud_detector; may create models in every ml_team schema
  bob    member of ml-admins, which owns prod.ml_team.fraud_detector; owns dev.ml_team.fraud_detector;
         EXECUTE on prod.ml_team.iris_model (a reader there); sees nothing in staging
"""

import os
import secrets

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError

from registry import docs, services, tracking
from registry.models import Catalog, Experiment, ModelVersion, RegisteredModel, Run, Schema

IRIS_SIGNATURE = {
    "inputs": [
        {"name": "sepal_length", "type": "double"},
        {"name": "sepal_width", "type": "double"},
        {"name": "petal_length", "type": "double"},
        {"name": "petal_width", "type": "double"},
    ],
    "outputs": [{"type": "long"}],
}
FRAUD_SIGNATURE = {
    "inputs": [
        {"name": "amount", "type": "double"},
        {"name": "merchant_category", "type": "string"},
        {"name": "hour_of_day", "type": "long"},
        {"name": "card_present", "type": "boolean"},
    ],
    "outputs": [{"name": "is_fraud", "type": "double"}],
}

CATALOGS = {
    "prod": "Production models. Promote into here by **copying** a version from `staging`.",
    "staging": "Candidates under validation before promotion to `prod`.",
    "dev": "Experiments. Anything goes; nothing here is served.",
}
SCHEMA_DESCRIPTION = "Models of the ML team."

IRIS_DESCRIPTION = """# Iris classifier

Predicts the species of an iris flower from four measurements (cm).

| class | species |
|---|---|
| 0 | setosa |
| 1 | versicolor |
| 2 | virginica |

Trained with `sklearn.ensemble.RandomForestClassifier` on the classic Fisher data set.
"""
FRAUD_DESCRIPTION = """# Fraud detector

Scores card transactions; a score above **0.8** sends the transaction to manual review.

* owner: the `ml-admins` group
* retrained weekly
"""

# (catalog, model, owner, versions, aliases, model tags, description)
MODELS = [
    ("prod", "iris_model", "alice", [
        ("First production model.", {"validation_status": "approved"}),
        ("More trees, better recall on *versicolor*.", {"validation_status": "approved"}),
        ("Candidate trained on the 2026 data.", {"validation_status": "pending"}),
    ], {"Champion": 2, "Challenger": 3}, {"task": "classification", "team": "ml_team"}, IRIS_DESCRIPTION),
    ("prod", "fraud_detector", "group:ml-admins", [
        ("Gradient boosting baseline.", {"validation_status": "approved"}),
        ("Adds merchant category.", {"validation_status": "approved"}),
    ], {"Champion": 1, "Challenger": 2}, {"task": "binary_classification", "pii": "false"}, FRAUD_DESCRIPTION),
    ("staging", "iris_model", "alice", [
        ("Staging copy of the candidate.", {}),
    ], {"Champion": 1}, {"task": "classification"}, IRIS_DESCRIPTION),
    ("staging", "fraud_detector", "admin", [
        ("Shadow-testing against prod traffic.", {"validation_status": "pending"}),
    ], {"Challenger": 1}, {"task": "binary_classification"}, FRAUD_DESCRIPTION),
    ("dev", "fraud_detector", "bob", [
        ("Quick experiment.", {}),
        ("Quick experiment, more features.", {}),
    ], {}, {"task": "binary_classification", "experimental": "true"}, FRAUD_DESCRIPTION),
]

# Lineage: alice's training run logged two datasets; prod iris v3 was registered from it and
# copied to staging (so bob, a reader of prod iris, sees the datasets but not the run or the copy).
DEMO_EXPERIMENT, DEMO_RUN = "iris-training", "rf-200-trees"
DEMO_DATASETS = [
    ("training", {"name": "iris_train", "digest": "5b1c0e2f", "source_type": "http",
                  "source": '{"url": "https://data.example.com/iris/train.csv"}'}),
    ("eval", {"name": "iris_eval", "digest": "9d4a7be3", "source_type": "delta_table",
              "source": '{"delta_table_name": "prod.data.iris_eval"}'}),
]
# (model, version) → (from the demo run, copied from (model, version) or None)
DEMO_LINEAGE = {
    ("prod.ml_team.iris_model", 3): (True, None),
    ("staging.ml_team.iris_model", 1): (True, ("prod.ml_team.iris_model", 3)),
}


class Command(BaseCommand):
    help = "Create demo users and catalogs/schemas/models (idempotent; passwords printed once)."

    def handle(self, *args, **options):
        with docs.changing():  # every model's doc rewritten at the end
            users, created = self._users()
            self._content(users)
        if created:
            self.stdout.write(self.style.WARNING("\nNew users (passwords shown only this once; note them):"))
            for username, password in created:
                self.stdout.write(f"  {username:<6} {password}")
            self.stdout.write("")
        existing = [u for u in ("admin", "alice", "bob") if u not in dict(created)]
        if existing:
            self.stdout.write(
                f"Users {', '.join(existing)} already exist (their passwords were printed when they "
                "were created). Reset one with: python manage.py changepassword <username>"
            )

    # --- users ---------------------------------------------------------------------------
    def _users(self):
        created = []
        admin = User.objects.filter(username="admin").first()
        if admin is None:
            password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            admin = User.objects.create_superuser("admin", "admin@example.com", password)
            created.append(("admin", password if not os.environ.get("ADMIN_PASSWORD") else "(from ADMIN_PASSWORD)"))
        actor = admin if admin.is_superuser and admin.is_active else (
            User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
        )
        if actor is None:
            raise CommandError("No active superuser to create the demo content as; run createsuperuser.")
        users = {"admin": actor}
        for username in ("alice", "bob"):
            user = User.objects.filter(username=username).first()
            if user is None:
                password = secrets.token_urlsafe(12)
                user = User.objects.create_user(username, f"{username}@example.com", password)
                created.append((username, password))
            users[username] = user
        group, group_created = Group.objects.get_or_create(name="ml-admins")
        if group_created:
            users["bob"].groups.add(group)
        return users, created

    # --- registry content --------------------------------------------------------------
    def _content(self, users):
        admin = users["admin"]
        made = []
        for catalog_name, description in CATALOGS.items():
            catalog = Catalog.objects.filter(name=catalog_name).first()
            if catalog is None:
                catalog = services.catalog_create(actor=admin, name=catalog_name, description=description)
                made.append(f"catalog {catalog_name}")
                self._grant(admin, catalog, ["alice", "bob"], "USE CATALOG")
                if catalog_name == "staging":
                    # A catalog-level grant reaches every schema and model inside it.
                    self._grant(admin, catalog, ["alice"], "EXECUTE")
            schema = Schema.objects.filter(catalog=catalog, name="ml_team").first()
            if schema is None:
                schema = services.schema_create(actor=admin, catalog=catalog, name="ml_team", description=SCHEMA_DESCRIPTION)
                made.append(f"schema {catalog_name}.ml_team")
                # bob holds USE CATALOG on staging but not USE SCHEMA: he sees the catalog, empty.
                self._grant(admin, schema, ["alice"] if catalog_name == "staging" else ["alice", "bob"], "USE SCHEMA")
                self._grant(admin, schema, ["alice"], "CREATE MODEL")

        run_id = self._demo_run(users["alice"])
        for catalog_name, model_name, owner, versions, aliases, tags, description in MODELS:
            full_name = f"{catalog_name}.ml_team.{model_name}"
            if RegisteredModel.objects.filter(full_name=full_name).exists():
                continue
            schema = Schema.objects.get(catalog__name=catalog_name, name="ml_team")
            model = services.model_create(
                actor=admin, schema=schema, name=model_name, description=description,
                tags=[{"key": k, "value": v} for k, v in tags.items()],
            )
            if owner != "admin":
                services.owner_transfer(actor=admin, obj=model, principal=owner)
            signature = IRIS_SIGNATURE if model_name == "iris_model" else FRAUD_SIGNATURE
            # Metadata only: demo versions carry a signature but no files (two have lineage: DEMO_LINEAGE).
            for number, (version_description, version_tags) in enumerate(versions, 1):
                from_run, copied_from = DEMO_LINEAGE.get((full_name, number), (False, None))
                if copied_from:
                    copied_from = ModelVersion.objects.filter(
                        model__full_name=copied_from[0], version=copied_from[1]).first()
                services.version_create(
                    actor=admin, model=model, description=version_description,
                    tags=[{"key": k, "value": v} for k, v in version_tags.items()],
                    signature=signature, status=ModelVersion.READY,
                    run_id=run_id if from_run else "", copied_from=copied_from,
                    source=f"models:/{copied_from.full_name}" if copied_from else "",
                )
            for alias, number in aliases.items():
                services.alias_set(actor=admin, model=model, alias=alias, version=number)
            if full_name == "prod.ml_team.iris_model":
                self._grant(admin, model, ["bob"], "EXECUTE")
            made.append(f"model {full_name} ({len(versions)} version{'' if len(versions) == 1 else 's'})")

        if made:
            self.stdout.write("Demo content created: " + "; ".join(made) + ".")
        else:
            self.stdout.write("Demo content already present; nothing changed.")

    @staticmethod
    def _demo_run(alice):
        """alice's experiment with one finished run that logged params, a metric and two
        datasets (created once; its run id afterwards)."""
        run = Run.objects.filter(experiment__name=DEMO_EXPERIMENT, name=DEMO_RUN).first()
        if run is not None:
            return run.run_uuid
        if Experiment.objects.filter(name=DEMO_EXPERIMENT).exists():
            return ""  # someone made an experiment of that name: leave it alone
        experiment = tracking.experiment_create(actor=alice, name=DEMO_EXPERIMENT)
        run = tracking.run_create(actor=alice, experiment_id=experiment.pk, run_name=DEMO_RUN)
        tracking.run_log_batch(
            actor=alice, run_id=run.run_uuid,
            params=[{"key": "n_estimators", "value": "200"}, {"key": "max_depth", "value": "6"}],
            metrics=[{"key": "accuracy", "value": 0.967, "timestamp": tracking.now_ms(), "step": 0}],
        )
        tracking.run_log_inputs(actor=alice, run_id=run.run_uuid, datasets=[
            {"tags": [{"key": "mlflow.data.context", "value": context}], "dataset": dataset}
            for context, dataset in DEMO_DATASETS
        ])
        tracking.run_update(actor=alice, run_id=run.run_uuid, status="FINISHED", end_time=tracking.now_ms())
        return run.run_uuid

    @staticmethod
    def _grant(actor, obj, principals, privilege):
        services.grants_change(
            actor=actor, obj=obj, changes=[{"principal": f"user:{p}", "add": [privilege]} for p in dict.fromkeys(principals)]
        )
