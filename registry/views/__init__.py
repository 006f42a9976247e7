"""The HTML pages. Thin: parse → `selectors`/`services` → render (see STYLE.md)."""
