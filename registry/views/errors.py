"""Handlers for Django's own 403/404/500 (raised outside our views, e.g. CSRF failures)."""

from django.shortcuts import render


def _message(exception, default):
    text = str(exception) if exception else ""
    # Django's resolver puts a dict in 404 exceptions; a plain message is all we ever show.
    return text if text and not text.startswith("{") else default


def not_found(request, exception=None):
    return render(request, "404.html", {"message": _message(exception, "This page does not exist.")}, status=404)


def forbidden(request, exception=None):
    return render(request, "403.html", {"message": _message(exception, "You may not do this.")}, status=403)


def csrf_failure(request, reason=""):
    message = "This form expired or was sent from another site (CSRF check failed). Reload the page and try again."
    return render(request, "403.html", {"message": message}, status=403)


def server_error(request):
    return render(request, "500.html", status=500)
