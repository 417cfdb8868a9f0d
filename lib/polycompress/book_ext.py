"""A Sphinx extension for this book (named in ``_config.yml``): two fixes for console errors
the book's browser test counts.

- Jupyter Book 1 registers sphinx-thebe's inline configuration script twice, and the second
  copy fails in the browser (``Identifier 'THEBE_JS_URL' has already been declared``): exact
  duplicate scripts are removed from each page.
- The pydata theme's page template reads a ``default_mode`` context variable that nothing sets
  under sphinx-book-theme (which also rejects it as a theme option), and its script then logs
  ``Got invalid theme mode: .``: the variable is set to "light".
"""

from __future__ import annotations

from typing import Any


def _dedupe_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # The copies differ only in filename None vs "" (an inline script either way).
        filename = getattr(script, "filename", script) or ""
        key = (str(filename), repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def _default_mode(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    if not context.get("default_mode"):
        context["default_mode"] = "light"


def setup(app: Any) -> dict:
    # Early: the event stops at the first handler that returns a template name.
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    app.connect("html-page-context", _default_mode, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
