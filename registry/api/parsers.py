"""The JSON parser of every API view (REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]).

Kept apart from `base.py`: DRF imports this while building `APIView` itself.
"""

import json

from django.conf import settings
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser


class PayloadTooLarge(APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def _no_duplicate_keys(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ParseError(f"The request body repeats the key {key[:80]!r}; send each field once.")
        seen[key] = value
    return seen


def _no_constants(name):
    raise ParseError(f"The request body contains {name}, which is not JSON.")


class StrictJSONParser(JSONParser):
    """JSON with a size limit (DATA_UPLOAD_MAX_MEMORY_SIZE → 413), no duplicate keys (one rule:
    they are refused, so no reader can pick a different one) and no NaN/Infinity."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("The request body is not UTF-8.") from None
        try:
            return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
        except json.JSONDecodeError as exc:
            raise ParseError(f"The request body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}).") from None
        except RecursionError:
            raise ParseError("The request body is nested too deeply.") from None
