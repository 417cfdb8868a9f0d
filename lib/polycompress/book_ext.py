"""A Sphinx extension for this book (named in ``_config.yml``).

Jupyter Book 1 registers sphinx-thebe's inline configuration script twice, and the second copy
fails in the browser (``Identifier 'THEBE_JS_URL' has already been declared``), which the book's
browser test counts as an error. This removes exact duplicate scripts from each page.
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


def setup(app: Any) -> dict:
    # Early: the event stops at the first handler that returns a template name.
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
