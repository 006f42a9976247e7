"""`manage.py create_api_token <username> [--rotate]`: the token for `Authorization: Bearer`."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = (
        "Print the API token of a user, creating it if the user has none. Clients send it as "
        "'Authorization: Bearer <token>' (the MLflow client: MLFLOW_TRACKING_TOKEN=<token>). "
        "Only the token goes to standard output, so `TOKEN=$(manage.py create_api_token alice)` "
        "works. --rotate replaces an existing token: the old one stops working at once."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", help="The user the token authenticates as.")
        parser.add_argument(
            "--rotate", action="store_true", help="Delete the user's current token and issue a new one."
        )

    def handle(self, *args, username, rotate, **options):
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(f"No user is named {username!r}.") from None
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive: an inactive user's token is refused anyway.")
        with transaction.atomic():
            if rotate:
                Token.objects.filter(user=user).delete()
            token, created = Token.objects.get_or_create(user=user)
        verb = "Rotated" if rotate else ("Created" if created else "Existing")
        self.stderr.write(f"{verb} API token for {username}:")
        self.stdout.write(token.key)
