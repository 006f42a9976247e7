from django import template
from django.utils.safestring import mark_safe

from registry import markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text):
    """Render a Markdown description as sanitised HTML."""
    return mark_safe(markdown.render(text))  # noqa: S308 - sanitised by nh3 in markdown.render
