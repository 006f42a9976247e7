"""One request through a WSGI application, as a server such as gunicorn makes it."""

from urllib.parse import urlencode
from wsgiref.util import setup_testing_defaults


def call(app, path, query=None, **environ):
    """(status, headers, result) of `app` for a GET of `path` with `query` (`environ`: more of
    the environ, e.g. HTTP_AUTHORIZATION or REQUEST_METHOD). `result` is what `app` returned,
    not yet read: its type tells who answered."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": urlencode(query or {}),
               "HTTP_HOST": "testserver", "SERVER_NAME": "testserver", **environ}
    setup_testing_defaults(environ)
    started = {}

    def start_response(status, response_headers, exc_info=None):
        started.update(status=status, headers=dict(response_headers))

    result = app(environ, start_response)
    return started["status"], started["headers"], result
