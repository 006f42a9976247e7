"""The JSON renderer of every API view (REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"]).

Error messages quote what the client sent (a name, a securable type…). `<`, `>` and `&` are
written as `\\u003c`, `\\u003e`, `\\u0026` — the same JSON once parsed, but no response body ever
contains a raw `<script` however it is sniffed or embedded (CVE-2023-6568 family). Kept apart
from `base.py`: DRF imports this while building `APIView` itself.
"""

from rest_framework.renderers import JSONRenderer

_ESCAPES = ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"))


class SafeJSONRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        body = super().render(data, accepted_media_type, renderer_context)
        for raw, escaped in _ESCAPES:  # outside strings these bytes cannot occur in JSON
            body = body.replace(raw, escaped)
        return body
