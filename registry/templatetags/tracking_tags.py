"""Formatting for the tracking pages: MLflow's epoch-millisecond times, run durations, run
status badges (the registry's colours: finished green, running amber, failed red) and metric
values."""


from django import template
from django.utils.html import format_html

from .registry_tags import local_time

register = template.Library()

RUN_STATUS = {
    "FINISHED": ("ready", "Finished", "●"),
    "RUNNING": ("pending", "Running", "◐"),
    "SCHEDULED": ("pending", "Scheduled", "◐"),
    "FAILED": ("failed", "Failed", "✕"),
    "KILLED": ("failed", "Killed", "✕"),
}


@register.filter
def ms_time(ms, fmt="%Y-%m-%d %H:%M"):
    """An epoch-millisecond time as local text ("—" when there is none); inside a `<time>`
    element: `{% timestamp %}`."""
    value = local_time(ms) if ms is not None else None
    return value.strftime(fmt) if value else "—"


@register.filter
def run_duration(run):
    """`1h 02m`, `3m 20s`, `850 ms`; empty while the run has no end time."""
    if run.end_time is None or run.start_time is None:
        return ""
    ms = max(0, run.end_time - run.start_time)
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms // 1000
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


@register.simple_tag
def run_status(status):
    css, label, icon = RUN_STATUS.get(status, ("pending", status, "?"))
    return format_html('<span class="badge badge-{}" title="{}"><span aria-hidden="true">{}</span> {}</span>',
                       css, status, icon, label)


@register.filter
def metric_value(metric):
    """A metric's value with up to 6 significant digits; NaN and missing shown as such."""
    if metric is None:
        return ""
    if metric.is_nan or metric.value is None:
        return "NaN"
    return f"{metric.value:.6g}"
