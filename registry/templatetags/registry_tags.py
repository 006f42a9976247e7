import functools
from datetime import datetime
from datetime import timezone as dt_timezone
from urllib.parse import quote

from django import template
from django.template.defaultfilters import truncatechars
from django.template.loader import TemplateDoesNotExist, get_template
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import RFC3986_SUBDELIMS
from django.utils.safestring import mark_safe

from registry import markdown, selectors
from registry.models import ModelVersion

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text):
    """Render a Markdown description as sanitised HTML."""
    return mark_safe(markdown.render(text))  # noqa: S308 - sanitised by nh3 in markdown.render


@register.filter
def model_url(model, version=None):
    """The page of a model (or, with a number, of one of its versions), from its full name."""
    parts = model.full_name.split(".")
    if version:
        return reverse("version", args=[*parts, version])
    return reverse("model", args=parts)


@register.filter
def path_part(value):
    """`value` written into a URL's path as `reverse` writes it: for links made from a page's URL
    and a name (the side tree's models: its schema's URL, each name and a slash), not with a
    `reverse` each (~20 µs: 1 ms of every page for the tree's 50 models)."""
    return quote(str(value), safe=RFC3986_SUBDELIMS + "/~:@")


def local_time(value):
    """A datetime, or epoch milliseconds (MLflow's run and metric times), in the current time
    zone (as the `date` filter shows it); None for anything else."""
    if isinstance(value, datetime):
        return timezone.localtime(value)
    try:
        return timezone.localtime(datetime.fromtimestamp(int(value) / 1000, tz=dt_timezone.utc))
    except (TypeError, ValueError, OverflowError, OSError):
        return None


@register.simple_tag
def timestamp(value, fmt="%Y-%m-%d %H:%M"):
    """`<time datetime="ISO 8601">text</time>` for a datetime or epoch milliseconds (`local_time`;
    `fmt` is strftime's), "—" for none. One call instead of two `date` filters: each took
    45-65 us (a formatter and locale lookups per call), 4 of the ~10 ms a table of 50 versions
    took to render."""
    local = local_time(value) if value is not None else None
    if local is None:
        return "—"
    return format_html('<time datetime="{}">{}</time>', local.isoformat(), local.strftime(fmt))


STATUS = {
    ModelVersion.READY: ("ready", "Ready", "●"),
    ModelVersion.PENDING: ("pending", "Pending", "◐"),
    ModelVersion.FAILED: ("failed", "Failed", "✕"),
}


@register.simple_tag
def status_badge(version, with_message=True):
    """A version's status as a badge (and a failure's reason). Built here, not by including a
    template, because tables show one per row."""
    css, label, icon = STATUS.get(version.status, ("pending", version.status, "?"))
    badge = format_html(
        '<span class="badge badge-{}" title="{}"><span aria-hidden="true">{}</span> {}</span>',
        css, version.status, icon, label,
    )
    if with_message and css == "failed" and version.status_message:
        badge += format_html(' <span class="status-message">{}</span>', version.status_message)
    return badge


_NO_VALUE = mark_safe('<span class="muted">—</span>')
_VERSION_ROW = (
    '<tr><td class="nowrap"><a class="strong" href="{}{}/">Version {}</a></td><td>{}</td><td>{}</td>'
    '<td class="nowrap muted">{}</td><td>{}</td><td class="mono small nowrap" title="{}">{}</td></tr>'
)


def _short(text, length):
    """`truncatechars`, which takes ~90 us for any text (it counts combining characters): a
    text no longer than `length` is never cut, so it is returned as it is."""
    return text if len(text) <= length else truncatechars(text, length)


@register.simple_tag
def alias_chips(names):
    """A version's aliases as chips (each followed by a space), a dash for none: the versions
    tables of the model page (`version_rows`) and of the search page."""
    return format_html_join("", '<span class="chip chip-alias chip-sm">@{}</span> ', ((n,) for n in names)) or _NO_VALUE


@register.simple_tag
def version_rows(versions, versions_url):
    """The rows of a model page's versions table, built here rather than by the template's loop:
    each row's dozen variable lookups and tags cost the template engine ~0.2-0.4 ms, 10-19 ms of
    a page of 50 versions (the model page with 1,000 versions: 55-58 ms on one VM against the
    50 ms target, 37 with one version). Escaped as the template escaped it (`format_html`)."""
    return format_html_join("\n", _VERSION_ROW, (
        (
            versions_url, v.version, v.version, status_badge(v),
            alias_chips(v.alias_names),
            timestamp(v.created_at),
            (v.created_by.username if v.created_by is not None else "") or "—",
            v.source,
            format_html("run {}", _short(v.run_id, 10)) if v.run_id else _NO_VALUE,
        )
        for v in versions
    ))


@register.inclusion_tag("registry/partials/tree.html", takes_context=True)
def catalog_nav(context):
    """The left catalog tree: what the user sees, the current path open; models only under the
    current schema (others load when opened), so its cost does not grow with the catalog."""
    request = context.get("request")
    user = getattr(request, "user", None)
    current = context.get("current") or {}
    tree = selectors.catalog_tree(user, current) if user is not None and user.is_authenticated else []
    return {"tree": tree, "current": current}


@register.simple_tag(takes_context=True)
def optional_include(context, template_name):
    """Render `template_name` with the page's context if it exists (slots other parts of the
    product fill later, e.g. templates/jobs/…), else nothing."""
    try:
        tpl = get_template(template_name)
    except TemplateDoesNotExist:
        return ""
    return tpl.render(context.flatten(), context.get("request"))


@register.simple_tag(takes_context=True)
def query(context, **changes):
    """The current query string with some parameters replaced (pagination, sorting)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value in (None, ""):
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return "?" + encoded if encoded else "?"


@register.simple_tag(takes_context=True)
def sort_link(context, param, key, default=None):
    """`?{param}=key`, or `-key` when the list is already sorted by `key` ascending."""
    current = context["request"].GET.get(param) or default
    value = "-" + key if current == key else key
    return query(context, **{param: value, param.replace("sort", "page"): None})


@register.simple_tag(takes_context=True)
def sort_state(context, param, key, default=None):
    current = context["request"].GET.get(param) or default
    if current == key:
        return "ascending"
    if current == "-" + key:
        return "descending"
    return "none"


@register.simple_tag(takes_context=True)
def page_query(context, param, number):
    return query(context, **{param: number})


@register.filter
def words(text):
    """`set_alias` → `set alias`."""
    return (text or "").replace("_", " ")


@register.filter
def change_text(value):
    """An audit event's before/after as short text: `alias: Champion, version: 2`."""
    if value in (None, "", {}):
        return ""
    if isinstance(value, dict):
        parts = []
        for key, item in value.items():
            if item in (None, "", [], {}):
                continue
            shown = item if isinstance(item, (str, int, float, bool)) or item is None else ", ".join(map(str, item))
            shown = str(shown)
            parts.append(f"{key}: {shown[:80]}{'…' if len(shown) > 80 else ''}")
        return "; ".join(parts)
    return str(value)[:160]


@register.filter
def plain(text):
    """A Markdown description as one line of plain text (for table cells). Returned unsafe, so
    the template escapes it again. Kept per text (a list page renders 50 descriptions, ~0.1 ms
    each through the Markdown parser, sanitiser and tag stripper): a function of the text alone,
    so a kept line is the one it would compute; texts longer than `PLAIN_KEPT_MAX` are not kept."""
    text = text or ""
    return _plain(text) if len(text) <= PLAIN_KEPT_MAX else _plain.__wrapped__(text)


PLAIN_KEPT_MAX = 2000  # characters; 2,048 texts and lines kept: ~8 MB of ASCII a process, 4x at most


@functools.lru_cache(maxsize=2048)
def _plain(text):
    import html

    from django.utils.html import strip_tags

    return " ".join(html.unescape(strip_tags(markdown.render(text))).split())


@register.filter
def control(field):
    """A form field's widget, marked invalid and tied to its error message when it has one."""
    attrs = {}
    if field.errors:
        attrs = {"aria-invalid": "true", "aria-describedby": f"{field.id_for_label}-error"}
    return field.as_widget(attrs=attrs)
