"""MLflow's search grammar → Django `Q` objects and `order_by` lists (MLFLOW_API.md "Search grammar").

    filter   := clause ( AND clause )*
    clause   := key op value
    key      := [prefix "."] identifier     prefix: attribute(s)/attr, tag(s); identifier plain or `backticked`
    op       := = | != | < | <= | > | >= | LIKE | ILIKE | IN | NOT IN
    value    := 'string' | "string" | number | ( 'a', 'b', … )

What each key accepts is declared in `MODEL_KEYS` / `VERSION_KEYS`; anything else (OR, IS NULL,
unknown keys, unbalanced quotes…) raises `InvalidInput` (400), never a 500.

- LIKE is case-sensitive and ILIKE is not, on every database: both become anchored regular
  expressions (`__regex` / `__iregex`), because SQLite's LIKE ignores ASCII case. A name's LIKE
  with a literal start (`name LIKE 'prod.ml.%'`, a catalog's or a schema's models) also bounds
  the name to the texts that start with it (`like_range`), which the name's index finds without
  reading every model; `literal%` is that range alone.
- Names are stored lowercase, so `name =`, `!=`, `IN` compare lowercased values; LIKE keeps the
  pattern as typed (case-sensitive, as MLflow documents it).
- Tag `!=` matches objects that carry the tag with another value, as MLflow's SQL store does —
  except ``tag.`mlflow.prompt.is_prompt` != 'true'``, which also matches objects without the
  tag (MLflow special-cases this key; the client adds it to every model search).
- Page tokens are opaque (base64 of a small JSON object); a token that does not decode is a 400.
"""

import base64
import binascii
import json
import re
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import BooleanField, Exists, F, Func, OuterRef, Q
from django.db.models.lookups import GreaterThanOrEqual, LessThan

from .errors import InvalidInput
from .models import ModelTag, VersionTag

PROMPT_TAG = "mlflow.prompt.is_prompt"

MODEL_MAX_RESULTS_DEFAULT = 100
MODEL_MAX_RESULTS_LIMIT = 1000
VERSION_MAX_RESULTS_DEFAULT = 10_000
VERSION_MAX_RESULTS_LIMIT = 200_000
MAX_FILTER_LENGTH = 10_000

STRING_OPS = ("=", "!=", "LIKE", "ILIKE")
LIST_OPS = ("IN", "NOT IN")
NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")


@dataclass(frozen=True)
class Key:
    field: str  # ORM path
    ops: tuple
    kind: str = "string"  # string | number | name
    lowercase: bool = False


@dataclass(frozen=True)
class Grammar:
    entity: str
    attributes: dict  # key name → Key
    tag_table: type
    tag_owner: str  # FK field of the tag table pointing at the searched row
    order_keys: dict  # order key → ORM field
    default_order: tuple
    tie_breakers: tuple
    # Other key families (`params.x`, `metrics.x` for runs): kind → function(clause) → Q.
    extra: dict = None
    # Key families order_by accepts besides attributes (`metrics.x`, `params.x`, `tags.x` for
    # runs): kind → function(name, descending) → ORM ordering expressions.
    extra_order: dict = None


MODEL_GRAMMAR = Grammar(
    entity="registered models",
    attributes={"name": Key("full_name", STRING_OPS + LIST_OPS, "name", lowercase=True)},
    tag_table=ModelTag,
    tag_owner="model",
    order_keys={"name": "full_name", "timestamp": "created_at", "creation_timestamp": "created_at",
                "last_updated_timestamp": "updated_at"},
    default_order=("full_name",),
    tie_breakers=("full_name",),
)
VERSION_GRAMMAR = Grammar(
    entity="model versions",
    attributes={
        "name": Key("model__full_name", STRING_OPS + LIST_OPS, "name", lowercase=True),
        "run_id": Key("run_id", STRING_OPS + LIST_OPS),
        "source_path": Key("source", STRING_OPS),
        "version_number": Key("version", NUMBER_OPS, "number"),
    },
    tag_table=VersionTag,
    tag_owner="version",
    order_keys={"name": "model__full_name", "version_number": "version", "timestamp": "created_at",
                "creation_timestamp": "created_at", "last_updated_timestamp": "updated_at"},
    default_order=("-updated_at", "model__full_name", "-version"),
    tie_breakers=("model__full_name", "-version"),
)

_ATTRIBUTE_PREFIXES = {"attribute", "attributes", "attr"}
_TAG_PREFIXES = {"tag", "tags"}
_EXTRA_PREFIXES = {"param": "param", "params": "param", "parameter": "param", "parameters": "param",
                   "metric": "metric", "metrics": "metric"}

# --- Lexer ------------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<number>-?\d+(?:\.\d+)?(?![\w.`]))
  | (?P<ident>(?:`[^`]*`|[A-Za-z_][\w\-]*)(?:\.(?:`[^`]*`|[\w\-:/]+))*)
    """,
    re.VERBOSE,
)


def _tokens(text):
    pos, out = 0, []
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise InvalidInput(f"Invalid filter at position {pos}: {text[pos:pos + 20]!r} (check quotes and operators).")
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws":
            continue
        out.append((kind, m.group()))
    return out


def _unquote(token):
    quote = token[0]
    body = token[1:-1]
    body = body.replace(quote * 2, quote)
    return re.sub(r"\\(.)", r"\1", body)


def _split_key(raw):
    """`tags.\\`my key\\`` → ('tag', 'my key'); `name` → ('attribute', 'name')."""
    parts = re.findall(r"`[^`]*`|[^.`]+", raw)
    if not parts:
        raise InvalidInput(f"Invalid filter key {raw[:80]!r}.")
    first = parts[0]
    if len(parts) >= 2 and not first.startswith("`") and first.lower() in _TAG_PREFIXES | _ATTRIBUTE_PREFIXES:
        kind = "tag" if first.lower() in _TAG_PREFIXES else "attribute"
        rest = parts[1:]
    elif len(parts) >= 2 and not first.startswith("`") and first.lower() in _EXTRA_PREFIXES:
        kind, rest = _EXTRA_PREFIXES[first.lower()], parts[1:]
    else:
        kind, rest = "attribute", parts
    if len(rest) == 1 and rest[0].startswith("`"):
        name = rest[0][1:-1]
    elif any(p.startswith("`") for p in rest):
        raise InvalidInput(f"Invalid filter key {raw[:80]!r}: quote the whole key in backticks.")
    else:
        name = ".".join(rest)
    if not name:
        raise InvalidInput(f"Invalid filter key {raw[:80]!r}: empty key.")
    return kind, name


@dataclass(frozen=True)
class Clause:
    kind: str  # attribute | tag
    key: str
    op: str
    value: object
    # A name's LIKE: how its SQL reads the value (`like_form`); None: from the value itself. Set
    # where the value is a stand-in for the SQL compiled once (`compiled_search`).
    like: str = None


def parse_filter(text):
    """The filter string → [Clause]. Only AND joins clauses."""
    if text is None or not str(text).strip():
        return []
    return list(_parsed(str(text)))


# A model server or a batch job sends the same few filters all day: each is parsed once per
# process (~25 µs of a served search). The clauses are shared, so frozen (and never changed).
@lru_cache(maxsize=256)
def _parsed(text):
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidInput(f"The filter is too long ({len(text)} characters, at most {MAX_FILTER_LENGTH}).")
    tokens = _tokens(text)
    clauses, i = [], 0

    def expect_value(position):
        if position >= len(tokens):
            raise InvalidInput("Invalid filter: a comparison is missing its value.")
        kind, value = tokens[position]
        if kind == "string":
            return _unquote(value), position + 1
        if kind == "number":
            return (float(value) if "." in value else int(value)), position + 1
        raise InvalidInput(f"Invalid filter: expected a quoted value, got {value[:40]!r}.")

    while True:
        if i >= len(tokens) or tokens[i][0] != "ident":
            got = tokens[i][1][:40] if i < len(tokens) else "the end"
            raise InvalidInput(f"Invalid filter: expected a key such as name or tags.<key>, got {got!r}.")
        kind, key = _split_key(tokens[i][1])
        i += 1
        if i >= len(tokens):
            raise InvalidInput("Invalid filter: a comparison is missing its operator.")
        tkind, tval = tokens[i]
        upper = tval.upper()
        if tkind == "op":
            op = {"==": "=", "<>": "!="}.get(tval, tval)
            i += 1
        elif tkind == "ident" and upper in ("LIKE", "ILIKE", "IN"):
            op = upper
            i += 1
        elif tkind == "ident" and upper == "NOT" and i + 1 < len(tokens) and tokens[i + 1][1].upper() == "IN":
            op = "NOT IN"
            i += 2
        elif tkind == "ident" and upper == "IS":
            raise InvalidInput("Invalid filter: IS NULL / IS NOT NULL comparisons are not supported.")
        else:
            raise InvalidInput(f"Invalid filter: unsupported operator {tval[:40]!r}.")
        if op in LIST_OPS:
            if i >= len(tokens) or tokens[i][0] != "lparen":
                raise InvalidInput(f"Invalid filter: {op} needs a parenthesised list, e.g. IN ('a', 'b').")
            i += 1
            values = []
            while True:
                value, i = expect_value(i)
                values.append(value)
                if i < len(tokens) and tokens[i][0] == "comma":
                    i += 1
                    continue
                if i < len(tokens) and tokens[i][0] == "rparen":
                    i += 1
                    break
                raise InvalidInput("Invalid filter: unbalanced parentheses in a list.")
            value = values
        else:
            value, i = expect_value(i)
        clauses.append(Clause(kind, key, op, value))
        if i >= len(tokens):
            return tuple(clauses)
        if tokens[i][0] == "ident" and tokens[i][1].upper() == "AND":
            i += 1
            continue
        if tokens[i][0] == "ident" and tokens[i][1].upper() == "OR":
            raise InvalidInput("Invalid filter: only AND may join clauses (OR is not supported).")
        raise InvalidInput(f"Invalid filter near {tokens[i][1][:40]!r}: join clauses with AND.")


# --- Clauses → Q ------------------------------------------------------------------------------
def like_regex(pattern):
    """SQL LIKE pattern (`%`, `_`) → an anchored regular expression both SQLite (Python `re`)
    and PostgreSQL understand."""
    out = []
    for char in pattern:
        if char == "%":
            out.append("(.|\n)*")
        elif char == "_":
            out.append("(.|\n)")
        elif char.isalnum() or char == " ":
            out.append(char)
        else:
            out.append("\\" + char if not char.isspace() else char)
    return "^" + "".join(out) + "$"


def like_range(pattern):
    """(low, high): the texts a LIKE `pattern` can match all lie in low <= text < high, compared
    code point by code point (byte by byte in UTF-8): low is the pattern's literal start, high the
    first text after every text that starts with it (its last character the next one). None when
    there is no such bound: no literal start (`%x`, `_x`), or only U+10FFFF characters in it."""
    cut = min((i for i in (pattern.find("%"), pattern.find("_")) if i >= 0), default=len(pattern))
    low = pattern[:cut]
    chars = list(low)
    while chars:
        code = ord(chars[-1]) + 1
        if code <= 0x10FFFF:
            chars[-1] = chr(0xE000 if 0xD800 <= code <= 0xDFFF else code)  # no text holds a surrogate
            return low, "".join(chars)
        chars.pop()
    return None


def like_low(pattern):
    return like_range(pattern)[0]


def like_high(pattern):
    return like_range(pattern)[1]


def like_form(pattern):
    """How a name's LIKE is asked: "prefix" (`literal%`: exactly the texts in `like_range`),
    "ranged" (a literal start, more wildcards: the range and the pattern), "pattern" (the pattern
    alone)."""
    bounds = like_range(pattern)
    if bounds is None:
        return "pattern"
    return "prefix" if pattern == bounds[0] + "%" else "ranged"


class _BytewiseGTE(GreaterThanOrEqual):
    """`>=` comparing texts byte by byte, as the name's `varchar_pattern_ops` index (Django's
    index for LIKE) orders them: PostgreSQL's `~>=~`, whatever the database's collation; SQLite's
    `>=` compares bytes already."""

    def get_rhs_op(self, connection, rhs):
        return f"~>=~ {rhs}" if connection.vendor == "postgresql" else super().get_rhs_op(connection, rhs)


class _BytewiseLT(LessThan):
    """`<` byte by byte (`_BytewiseGTE`): PostgreSQL's `~<~`."""

    def get_rhs_op(self, connection, rhs):
        return f"~<~ {rhs}" if connection.vendor == "postgresql" else super().get_rhs_op(connection, rhs)


def _ranged(key, op):
    """Whether a clause on attribute `key` is a name's LIKE (`_like_q`: its form shapes its SQL)."""
    return key.kind == "name" and op == "LIKE"


def _like_q(field, pattern, form):
    """A case-sensitive LIKE on `field` (`like_form`: the range of its literal start too)."""
    regex = Q(**{f"{field}__regex": like_regex(pattern)})
    if form == "pattern":
        return regex
    low, high = like_range(pattern)
    bounds = Q(_BytewiseGTE(F(field), low)) & Q(_BytewiseLT(F(field), high))
    return bounds if form == "prefix" else bounds & regex


def _string_q(field, op, value, lowercase=False):
    if op in ("=", "!="):
        value = value.lower() if lowercase else value
        q = Q(**{field: value})
        return ~q if op == "!=" else q
    if op == "LIKE":
        return Q(**{f"{field}__regex": like_regex(value)})
    if op == "ILIKE":
        return Q(**{f"{field}__iregex": like_regex(value)})
    if op in LIST_OPS:
        values = [v.lower() if lowercase else v for v in value]
        q = Q(**{f"{field}__in": values})
        return ~q if op == "NOT IN" else q
    raise InvalidInput(f"Invalid filter: unsupported operator {op}.")  # pragma: no cover


def _number_q(field, op, value, key):
    try:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"Invalid filter: {key} must be compared with an integer, got {str(value)[:40]!r}.") from None
    if op == "!=":
        return ~Q(**{field: number})
    lookup = {"=": "", "<": "__lt", "<=": "__lte", ">": "__gt", ">=": "__gte"}[op]
    return Q(**{f"{field}{lookup}": number})


def string_clause_q(clause, field="value"):
    """A `= != LIKE ILIKE` clause on one string column (for key families such as params)."""
    if clause.op not in STRING_OPS or not isinstance(clause.value, str):
        raise InvalidInput(f"Invalid filter: {clause.key[:60]} accepts {', '.join(STRING_OPS)} with a quoted string.")
    return _string_q(field, clause.op, clause.value)


def number_clause_q(clause, field="value"):
    """A `= != < <= > >=` clause on one numeric column (for key families such as metrics)."""
    if clause.op not in NUMBER_OPS or isinstance(clause.value, (list, str)):
        raise InvalidInput(f"Invalid filter: {clause.key[:60]} accepts {', '.join(NUMBER_OPS)} with a number.")
    value = float(clause.value)
    if clause.op == "!=":
        return ~Q(**{field: value})
    lookup = {"=": "", "<": "__lt", "<=": "__lte", ">": "__gt", ">=": "__gte"}[clause.op]
    return Q(**{f"{field}{lookup}": value})


class _AmongIds(Func):
    """`pk = ANY(ARRAY(ids))`, given the primary key and `ArraySubquery(ids)`: PostgreSQL probes
    the primary key's index for each id the subquery finds."""
    output_field = BooleanField()

    def as_sql(self, compiler, connection, **extra):
        (pk, pk_params), (ids, ids_params) = (compiler.compile(e) for e in self.get_source_expressions())
        return f"({pk} = ANY({ids}))", [*pk_params, *ids_params]


class _IsTrue(Func):
    """`(condition) IS TRUE`: for `x IN (subquery)`, a test against a hash of the subquery's rows,
    which PostgreSQL would otherwise turn into a join."""
    template = "(%(expressions)s) IS TRUE"
    output_field = BooleanField()


def _tag_q(grammar, clause, few=None):
    if clause.op not in STRING_OPS:
        raise InvalidInput(f"Invalid filter: tags accept only {', '.join(STRING_OPS)}, not {clause.op}.")
    if not isinstance(clause.value, str):
        raise InvalidInput("Invalid filter: a tag must be compared with a quoted string.")
    if few is not None:  # `held_by_few`: the objects read by id from the tag's rows, or tested against them
        ids = grammar.tag_table.objects.filter(key=clause.key, value=clause.value).order_by().values(
            grammar.tag_table._meta.get_field(grammar.tag_owner).attname)
        if few:
            from django.contrib.postgres.expressions import ArraySubquery  # PostgreSQL only

            return Q(_AmongIds(F("pk"), ArraySubquery(ids)))
        return Q(_IsTrue(Q(pk__in=ids)))
    tags = grammar.tag_table.objects.filter(**{grammar.tag_owner: OuterRef("pk")}, key=clause.key)
    if clause.key == PROMPT_TAG and clause.op == "!=":
        return ~Q(Exists(tags.filter(value=clause.value)))
    return Q(Exists(tags.filter(_string_q("value", clause.op, clause.value))))


def filter_q(grammar, text):
    """The filter string → one Q over the searched table."""
    return clauses_q(grammar, parse_filter(text))


def clauses_q(grammar, clauses, forms=None):
    """Parsed clauses (`parse_filter`) → one Q over the searched table. `forms`: {position of a
    `tags.k = 'v'` clause: whether few objects hold its value} (`held_by_few`)."""
    q = Q()
    for position, clause in enumerate(clauses):
        if clause.kind in ("param", "metric"):
            if not grammar.extra or clause.kind not in grammar.extra:
                raise InvalidInput(f"Invalid filter: {clause.kind}s cannot be searched for {grammar.entity}.")
            q &= grammar.extra[clause.kind](clause)
            continue
        if clause.kind == "tag":
            if grammar.tag_table is None:
                raise InvalidInput(f"Invalid filter: tags cannot be searched for {grammar.entity}.")
            q &= _tag_q(grammar, clause, few=(forms or {}).get(position))
            continue
        key = grammar.attributes.get(clause.key)
        if key is None:
            raise InvalidInput(
                f"Invalid filter: unknown key {clause.key[:60]!r} for {grammar.entity}; "
                f"use {', '.join(sorted(grammar.attributes))} or tags.<key>."
            )
        if clause.op not in key.ops:
            raise InvalidInput(
                f"Invalid filter: {clause.key} accepts only {', '.join(key.ops)}, not {clause.op}."
            )
        if key.kind == "number":
            if isinstance(clause.value, list):
                raise InvalidInput(f"Invalid filter: {clause.key} cannot be compared with a list.")
            q &= _number_q(key.field, clause.op, clause.value, clause.key)
        else:
            values = clause.value if isinstance(clause.value, list) else [clause.value]
            if not all(isinstance(v, str) for v in values):
                raise InvalidInput(f"Invalid filter: {clause.key} must be compared with quoted strings.")
            if _ranged(key, clause.op):
                q &= _like_q(key.field, clause.value, clause.like or like_form(clause.value))
                continue
            q &= _string_q(key.field, clause.op, clause.value, key.lowercase)
    return q


_ORDER_CLAUSE = re.compile(r"^\s*((?:`[^`]*`|[^\s`])+)(?:\s+(ASC|DESC))?\s*$", re.IGNORECASE)


def order_by(grammar, items):
    """`["name DESC", "timestamp"]` → ORM ordering, with the grammar's tie-breakers. A key named
    twice is a 400, as in MLflow."""
    items = [i for i in (items or []) if i is not None and str(i).strip()]
    if not items:
        return list(grammar.default_order)
    fields, seen = [], set()
    for item in items:
        match = _ORDER_CLAUSE.match(str(item))
        if not match:
            raise InvalidInput(f"Invalid order_by clause {str(item)[:80]!r}: use '<key> [ASC|DESC]'.")
        key, direction = match.groups()
        descending = (direction or "").upper() == "DESC"
        kind, name = _split_key(key)
        if (kind, name) in seen:
            raise InvalidInput(f"Invalid order_by: {key[:60]!r} is named twice.")
        seen.add((kind, name))
        if kind != "attribute" and grammar.extra_order and kind in grammar.extra_order:
            fields += grammar.extra_order[kind](name, descending)
            continue
        field = grammar.order_keys.get(name) if kind == "attribute" else None
        if field is None:
            families = [f"{k}s.<key>" for k in grammar.extra_order or {}]
            raise InvalidInput(
                f"Invalid order_by key {key[:60]!r} for {grammar.entity}; use "
                f"{', '.join(sorted(grammar.order_keys) + families)}."
            )
        fields.append(("-" if descending else "") + field)
    used = {f.lstrip("-") for f in fields if isinstance(f, str)}
    fields += [t for t in grammar.tie_breakers if t.lstrip("-") not in used]
    return fields


# --- Paging -----------------------------------------------------------------------------------
def max_results(value, default, limit):
    if value in (None, ""):
        return default
    text = str(value).strip()
    if not re.fullmatch(r"\d{1,12}", text):
        raise InvalidInput(f"Invalid value for max_results: {str(value)[:40]!r} (a positive integer).")
    number = int(text)
    if number < 1 or number > limit:
        raise InvalidInput(f"Invalid value for max_results: it must be between 1 and {limit}, got {number}.")
    return number


def encode_token(offset):
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token):
    if token in (None, ""):
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(str(token).encode("ascii")).decode("utf-8"))
        offset = data["offset"]
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error):
        raise InvalidInput("Invalid page_token.") from None
    return offset


def page(queryset, *, page_token, size):
    """(rows, next_page_token or None)."""
    offset = decode_token(page_token)
    rows = list(queryset[offset : offset + size + 1])
    if len(rows) > size:
        return rows[:size], encode_token(offset + size)
    return rows, None


def search(queryset, grammar, *, filter_string="", order=None, page_token=None, size):
    queryset = queryset.filter(filter_q(grammar, filter_string)).order_by(*order_by(grammar, order))
    return page(queryset, page_token=page_token, size=size)


# --- Searches compiled once per shape ---------------------------------------------------------
# Django took longer to assemble a search's permission-filtered SQL than PostgreSQL took to run
# it. A search's SQL depends only on its shape — which keys, operators and kinds of value its
# clauses have, its order and page size — so `compiled_search` builds it once per shape with
# stand-ins for the values (`db.compiled_rows`) and passes the values and the offset as parameters.
# What `_string_q` and `_like_q` make of a text before it reaches the SQL.
_VALUE_FORMS = (str.lower, like_regex, like_low, like_high)


def _shape(grammar, clauses):
    """(shape, {name: value}, clauses with the names in place of the values), or None for a
    search compiled SQL does not take (its values' kinds could make it fail, or it uses another
    key family than attributes and tags): it goes through `search`, which raises the precise error."""
    shape, values, named = [], {}, []
    for n, clause in enumerate(clauses):
        value = clause.value
        if clause.kind == "attribute":
            key = grammar.attributes.get(clause.key)
            if key is None or clause.op not in key.ops:
                return None
            wanted = int if key.kind == "number" else str
        elif clause.kind == "tag" and grammar.tag_table is not None and clause.op in STRING_OPS:
            wanted = str
        else:
            return None
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list) != (clause.op in LIST_OPS) or not all(
            type(v) is wanted for v in items  # noqa: E721 (bool is no int here)
        ):
            return None
        names = [f"v{n}_{i}" for i in range(len(items))]
        values.update(zip(names, items))
        # A name's LIKE: its SQL differs with the value's form (a range, the pattern, or both).
        like = like_form(value) if clause.kind == "attribute" and _ranged(key, clause.op) else None
        shape.append((clause.kind, clause.key, clause.op, len(items) if isinstance(value, list) else None, like))
        named.append((clause, names, like))
    return tuple(shape), values, named


def compiled_search(key, base, grammar, *, user, filter_string="", order=None, page_token=None, size, clauses=None,
                    tuples=False):
    """`search` over the values() queryset `base(user)` for `user`, its SQL compiled once per kind
    of user and shape of search (`key` names `base`): (rows, next page token or None).
    `clauses`: `filter_string` already parsed, by a caller that needed them first. `tuples`:
    each row as a sequence of `base`'s columns in their order, not a dict (`db.compiled_rows`)."""
    from .permissions import compiled_for

    if clauses is None:
        clauses = parse_filter(filter_string)
    fields = order_by(grammar, order)
    offset = decode_token(page_token)
    found = _shape(grammar, clauses)
    if found is None or not all(isinstance(f, str) for f in fields):
        rows, token = search(base(user), grammar, filter_string=filter_string, order=order, page_token=page_token,
                             size=size)
        return ([tuple(row.values()) for row in rows] if tuples else rows), token
    shape, values, named = found
    tagged = next((i for i, c in enumerate(clauses) if c.kind == "tag" and c.op == "="), None)
    few = None if tagged is None else _held_by_few_as_counted(grammar, clauses[tagged])
    forms = {} if few is None else {tagged: few}

    def build(user, **given):
        chosen = [Clause(c.kind, c.key, c.op, [given[n] for n in names] if isinstance(c.value, list) else given[names[0]],
                         like) for c, names, like in named]
        return base(user).filter(clauses_q(grammar, chosen, forms)).order_by(*fields)[: size + 1]

    rows = compiled_for(user, ("search", *key, shape, tuple(fields), size, tagged, few), build, offset=offset,
                        transforms=_VALUE_FORMS, tuples=tuples, **values)
    if few is not None:  # counted after the search, whose statement checked the caller's credential
        held_by_few(grammar, clauses[tagged])
    if len(rows) > size:
        return rows[:size], encode_token(offset + size)
    return rows, None


# --- A tag value few objects hold, or many -----------------------------------------------------
# As EXISTS, a `tags.k = 'v'` clause became a join PostgreSQL ran as a hash of the objects that
# hold the value, probed by every object of the table: its generic plan cannot know how many
# hold it, so a search read the whole table whatever the value (at 100,000 versions, 1,048 models
# for a value 105 hold). On PostgreSQL the first such clause of a search now takes one of two
# forms instead, by how many objects hold its value:
# - few (at most `FEW_TAGGED_MAX`, and at most a quarter of the table): the holders read by id
#   from the tag's rows (`= ANY(ARRAY(…))`, an index probe each), growing with the holders and
#   not with the table (105 of 1,048 models: the statement 0.53 → 0.45 ms);
# - many: the objects walked in the search's order, each tested against a hash of the holders
#   (`(… IN (…)) IS TRUE`, which PostgreSQL keeps a test rather than a join), so that a search by
#   name stops at the end of its page, after about four objects for each one listed (943 of
#   1,048: 1.64 → 1.31 ms in-process, the page of 100 models).
# How many: the tag's rows counted (up to `FEW_TAGGED_MAX` + 1) against PostgreSQL's estimate of
# the table's rows (`reltuples`, kept by ANALYZE), in a statement of its own after a search of
# the value (whose statement checked the caller's credential), at most once a minute per value
# and process; a value not counted yet is searched by the walk. Either form gives the same rows;
# only the time differs.
FEW_TAGGED_MAX = 1000
FEW_TAGGED_SECONDS = 60.0
_few_tagged = {}  # (tag table, key, value) → (held by few, until when: time.monotonic())
_FEW_TAGGED_VALUES = 10_000
_few_lock = threading.Lock()


def _forms_apply(grammar, clause):
    """Whether `clause` takes one of the two forms (PostgreSQL; else the EXISTS)."""
    return (grammar.tag_table is not None and isinstance(clause.value, str)
            and connections[DEFAULT_DB_ALIAS].vendor == "postgresql")


def _held_by_few_as_counted(grammar, clause):
    """`held_by_few` as last counted, without counting: False for a value not counted yet."""
    if not _forms_apply(grammar, clause):
        return None
    found = _few_tagged.get((grammar.tag_table, clause.key, clause.value))
    return found is not None and found[0]


def held_by_few(grammar, clause):
    """Whether few objects hold the tag value `clause` compares (see above), counted again when
    last counted a minute ago or more; None where neither form applies (SQLite: the EXISTS)."""
    if not _forms_apply(grammar, clause):
        return None
    connection = connections[DEFAULT_DB_ALIAS]
    key, now = (grammar.tag_table, clause.key, clause.value), time.monotonic()
    found = _few_tagged.get(key)
    if found is not None and found[1] > now:
        return found[0]
    quote, tags = connection.ops.quote_name, grammar.tag_table._meta
    table, key_column, value_column = (quote(name) for name in (
        tags.db_table, tags.get_field("key").column, tags.get_field("value").column))
    objects = quote(tags.get_field(grammar.tag_owner).related_model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT (SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {key_column} = %s AND {value_column} = %s '
            f'LIMIT %s) AS "held") * 4 <= LEAST(%s, (SELECT "reltuples" FROM "pg_class" WHERE "oid" = %s::regclass))',
            [clause.key, clause.value, FEW_TAGGED_MAX + 1, FEW_TAGGED_MAX * 4, objects])
        few = bool(cursor.fetchone()[0])
    with _few_lock:
        if len(_few_tagged) >= _FEW_TAGGED_VALUES:
            _few_tagged.clear()
        _few_tagged[key] = (few, now + FEW_TAGGED_SECONDS)
    return few
