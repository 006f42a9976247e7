"""The JSON renderer of every API view (REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"]).

Error messages quote what the client sent (a name, a securable type…). `<`, `>` and `&` are
written as `\\u003c`, `\\u003e`, `\\u0026` — the same JSON once parsed, but no response body ever
contains a raw `<script` however it is sniffed or embedded (CVE-2023-6568 family). Kept apart
from `base.py`: DRF imports this while building `APIView` itself.

The bytes come from orjson (a page of 100 models took json.dumps ~0.6 ms): the same compact
UTF-8 JSON DRF writes with its defaults (COMPACT_JSON, UNICODE_JSON). What orjson does not write
itself — datetimes, lazy translations, decimals, UUIDs — goes through DRF's own encoder, so it
reads exactly as before. No response holds a non-finite float (metrics keep NaN as a flag and
clamp infinities, registry/tracking.py), which orjson would write as null.
"""

import orjson
from rest_framework.utils.encoders import JSONEncoder
from rest_framework.renderers import JSONRenderer

_ESCAPES = ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"))
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS


class SafeJSONRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        body = orjson.dumps(data, default=JSONEncoder().default, option=_OPTIONS)
        for raw, escaped in _ESCAPES:  # outside strings these bytes cannot occur in JSON
            body = body.replace(raw, escaped)
        return body
