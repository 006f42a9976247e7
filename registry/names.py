"""Validation of names, aliases and tags: MLflow's rules and Unity Catalog's, whichever is
stricter. Every failure raises `InvalidInput` with a message naming the rule broken."""

import posixpath
import re
import unicodedata

from django.conf import settings

from .errors import InvalidInput

MAX_NAME_LENGTH = 255
MAX_ALIAS_LENGTH = 255
_FORBIDDEN_NAME_CHARS = {".": "a period", " ": "a space", "/": "a slash", ":": "a colon", "%": "a percent sign"}
_ALIAS_RE = re.compile(r"^[\w\-]+$")
_TAG_KEY_RE = re.compile(r"^[/\w.\- :]*$")
_RESERVED_ALIAS_RE = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)


def _limits():
    return settings.REGISTRY


def validate_name_part(value, kind="name"):
    """One part of a three-level name (catalog, schema or model). Returns it lowercased."""
    if not isinstance(value, str) or value == "":
        raise InvalidInput(f"The {kind} must not be empty.")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInput(f"The {kind} must be at most {MAX_NAME_LENGTH} characters, got {len(value)}.")
    for char, label in _FORBIDDEN_NAME_CHARS.items():
        if char in value:
            raise InvalidInput(f"The {kind} {value[:80]!r} must not contain {label}.")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") or c.isspace() for c in value):
        raise InvalidInput(f"The {kind} must not contain control or whitespace characters.")
    if "`" in value:
        raise InvalidInput(f"The {kind} {value[:80]!r} must not contain a backtick.")
    return value.lower()


def parse_full_name(full_name):
    """`catalog.schema.model` → (catalog, schema, model), each validated and lowercased."""
    if not isinstance(full_name, str) or not full_name:
        raise InvalidInput("The model name must not be empty; use catalog.schema.model.")
    if len(full_name) > 3 * MAX_NAME_LENGTH + 2:
        raise InvalidInput(f"The name is too long ({len(full_name)} characters).")
    parts = full_name.split(".")
    if len(parts) != 3:
        raise InvalidInput(
            f"The model name {full_name[:200]!r} must have three levels: catalog.schema.model "
            f"(got {len(parts)})."
        )
    return (
        validate_name_part(parts[0], "catalog name"),
        validate_name_part(parts[1], "schema name"),
        validate_name_part(parts[2], "model name"),
    )


def parse_schema_full_name(full_name):
    """`catalog.schema` → (catalog, schema)."""
    parts = (full_name or "").split(".")
    if len(parts) != 2:
        raise InvalidInput(f"The schema name {full_name[:200]!r} must have two levels: catalog.schema.")
    return validate_name_part(parts[0], "catalog name"), validate_name_part(parts[1], "schema name")


def validate_alias(alias):
    if not isinstance(alias, str) or alias == "":
        raise InvalidInput("The alias must not be empty.")
    if len(alias) > MAX_ALIAS_LENGTH:
        raise InvalidInput(f"The alias must be at most {MAX_ALIAS_LENGTH} characters, got {len(alias)}.")
    if not _ALIAS_RE.match(alias):
        raise InvalidInput(
            f"The alias {alias[:80]!r} may contain only letters, digits, underscores and hyphens."
        )
    if _RESERVED_ALIAS_RE.match(alias):
        raise InvalidInput(
            f"The alias {alias!r} is reserved: 'latest' and 'v<number>' refer to versions already."
        )
    return alias


def validate_version_number(value):
    """A version as the API sends it (a string) → int."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = str(value).strip() if value is not None else ""
        if not re.fullmatch(r"\d{1,9}", text):
            raise InvalidInput(f"Parameter 'version' must be an integer, got '{str(value)[:40]}'.", field="version")
        number = int(text)
    if number < 1:
        raise InvalidInput(f"Parameter 'version' must be a positive integer, got '{value}'.", field="version")
    return number


def validate_tag(key, value):
    limits = _limits()
    if not isinstance(key, str) or key == "":
        raise InvalidInput("The tag key must not be empty.")
    if len(key) > limits["MAX_TAG_KEY_LENGTH"]:
        raise InvalidInput(f"The tag key must be at most {limits['MAX_TAG_KEY_LENGTH']} characters, got {len(key)}.")
    if not _TAG_KEY_RE.match(key):
        raise InvalidInput(
            f"The tag key {key[:80]!r} may contain only letters, digits, underscores, hyphens, "
            "periods, spaces, colons and slashes."
        )
    # A key that a path normalisation would change (`a/./b`, `a/`, `a//b`, `a/../b`) resolves to
    # another key when tags are written as files (MLflow's rule); `..` and `/` may not lead.
    if key.startswith(("/", "..")) or posixpath.normpath(key) != key:
        raise InvalidInput(f"The tag key {key[:80]!r} must not look like a path (leading '/' or '..').")
    if value is None:
        value = ""
    if not isinstance(value, str):
        value = str(value)
    if len(value) > limits["MAX_TAG_VALUE_LENGTH"]:
        raise InvalidInput(
            f"The tag value must be at most {limits['MAX_TAG_VALUE_LENGTH']} characters, got {len(value)}."
        )
    return key, value


def validate_description(text):
    text = text or ""
    if not isinstance(text, str):
        raise InvalidInput("The description must be text.")
    limit = _limits()["MAX_DESCRIPTION_LENGTH"]
    if len(text) > limit:
        raise InvalidInput(f"The description must be at most {limit} characters, got {len(text)}.")
    return text
