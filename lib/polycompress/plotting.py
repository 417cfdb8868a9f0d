"""Altair charts that render with no internet: in the built book and in JupyterLab.

Altair's default HTML output loads Vega from a CDN. Instead:

- :func:`write_bundle` writes Vega, Vega-Lite and vega-embed (from ``vl-convert``) as one
  classic script, wrapped in a function so its top-level names cannot collide with the page's
  other scripts; the book loads it once per page from ``_static/`` (``_config.yml``).
- the ``polycompress`` renderer (:func:`enable`) emits, for each chart, the Vega-Lite JSON for
  JupyterLab's built-in renderer and an HTML fallback that calls the page's ``vegaEmbed``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import altair as alt

BUNDLE_NAME = "vega-offline.js"


def bundle_js() -> str:
    """The Vega stack as one classic script that defines ``window.vegaEmbed`` (~900 KB)."""
    import vl_convert as vlc

    version = ".".join(alt.SCHEMA_VERSION.split(".")[:2])  # "v6.4.1" -> "v6.4"
    code = vlc.javascript_bundle(snippet="window.vegaEmbed = vegaEmbed;", vl_version=version)
    return "(() => {\n" + code + "\n})();\n"


def write_bundle(path: Path | str) -> Path:
    """Write :func:`bundle_js` to ``path`` (atomically; parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(bundle_js(), encoding="utf-8")
    tmp.replace(path)
    return path


def _html(spec: dict) -> str:
    div = f"vega-{uuid.uuid4().hex[:12]}"
    # vegaEmbed is defined by the page-level bundle; wait for it in case this output is
    # parsed before that script has run.
    return (
        f'<div id="{div}" class="polycompress-chart"></div>\n'
        "<script>(function () {\n"
        f"  const spec = {json.dumps(spec)};\n"
        "  function draw() {\n"
        f'    if (window.vegaEmbed) {{ window.vegaEmbed("#{div}", spec, {{actions: false}})'
        '.catch(function (e) { console.error(e); }); }\n'
        "    else { setTimeout(draw, 30); }\n"
        "  }\n"
        "  draw();\n"
        "})();</script>"
    )


def renderer(spec: dict, **metadata) -> dict:
    """Altair renderer: Vega-Lite JSON for JupyterLab plus offline HTML for the book."""
    version = alt.SCHEMA_VERSION.split(".")[0]  # "v6"
    return {f"application/vnd.vegalite.{version}+json": spec, "text/html": _html(spec)}


def enable() -> None:
    """Use the offline renderer for every chart shown from now on; charts embed their data."""
    alt.renderers.register("polycompress", renderer)
    alt.renderers.enable("polycompress")
    alt.data_transformers.disable_max_rows()


if __name__ == "__main__":
    import sys

    print(write_bundle(sys.argv[1] if len(sys.argv) > 1 else f"_static/{BUNDLE_NAME}"))


def interval_chart(data, y, color, x_title: str, a_title: str, b_title: str, fields=(), **encode) -> alt.LayerChart:
    """Paired differences from :func:`polycompress.compare.paired_intervals`: a rule from ``low``
    to ``high``, a point at ``difference`` (F1 of b minus a) and a dashed line at zero.

    ``a_title``/``b_title`` name the two models in the tooltip, after ``fields``; ``encode``
    adds channels (opacity, yOffset). The zero line has no data of its own, so facet the result
    with ``.facet(data=data, ...)``.
    """
    tooltip = [*fields, alt.Tooltip("f1_a:Q", title=a_title, format=".3f"),
               alt.Tooltip("f1_b:Q", title=b_title, format=".3f"),
               alt.Tooltip("low:Q", format=".3f"), alt.Tooltip("high:Q", format=".3f")]
    base = alt.Chart(data).encode(y=y, color=color, **encode)
    return (base.mark_rule().encode(x=alt.X("low:Q", title=x_title), x2="high:Q")
            + base.mark_point(filled=True).encode(x="difference:Q", tooltip=tooltip)
            + alt.Chart().mark_rule(strokeDash=[3, 3]).encode(x=alt.datum(0)))
