"""The login page, guarded against password guessing like the API's basic auth (BAD_INPUTS.md
"repeated failed logins"): the same `login_guard` counts failures per username and per client
address, and while either is locked out the form answers 429 without checking the password."""

from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from rest_framework.exceptions import Throttled

from registry.api.auth import login_guard

LOCKED = "Too many failed logins for this account or address; try again later."


class GuardedAuthenticationForm(AuthenticationForm):
    locked_out = False

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = self.request.META.get("REMOTE_ADDR") if self.request else None
        try:
            login_guard.check(username, address)
        except Throttled:
            self.locked_out = True
            raise ValidationError(LOCKED, code="locked") from None
        try:
            cleaned = super().clean()
        except ValidationError:
            login_guard.failed(username, address)
            raise
        login_guard.succeeded(username, address)
        return cleaned


class GuardedLoginView(auth_views.LoginView):
    form_class = GuardedAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.locked_out:
            response.status_code = 429
        return response
