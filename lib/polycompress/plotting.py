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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd

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
        # the view stays on the element, so a test (or a reader's console) can inspect what it drew
        f'.then(function (r) {{ const el = document.getElementById("{div}"); '
        'el.polycompressView = r.view; el.polycompressSpec = spec; })'
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


#: the colours of a paired difference's verdict, the same in every chapter; "collapsed" marks a
#: pair in which a model scored below :data:`polycompress.compare.COLLAPSE_F1` on the regular set
VERDICT_COLORS = {"higher": "#1b9e77", "no clear difference": "#9e9e9e", "seeds disagree": "#e6ab02",
                  "lower": "#d95f02", "collapsed": "#7570b3"}


def verdict_color(title: str) -> alt.Color:
    """Colour by ``verdict`` with the fixed :data:`VERDICT_COLORS` (so "collapsed" always has its own)."""
    return alt.Color("verdict:N", title=title, legend=alt.Legend(orient="top"),
                     scale=alt.Scale(domain=list(VERDICT_COLORS), range=list(VERDICT_COLORS.values())))


def panel_labels(data: pd.DataFrame, panels: Sequence[str]) -> tuple[pd.Series, list[str]]:
    """One label per row joining the ``panels`` fields ("multilingual · imp partial 50%"), and
    the labels in the order of those fields' sorted values (numbers sort as numbers)."""
    if data.empty:
        return pd.Series([], index=data.index, dtype=object), []
    label = data[list(panels)].astype(str).agg(" · ".join, axis=1)
    order = label.loc[data.sort_values(list(panels), kind="stable").index].unique().tolist()
    return label, order


def interval_chart(data: pd.DataFrame, y, color, x_title: str, a_title: str, b_title: str, *,
                   panels: Sequence[str] = (), columns: int = 2, width: int = 220, height=alt.Step(12),
                   fields: Sequence = (), params: Sequence = (), **encode) -> alt.TopLevelMixin:
    """Paired differences from :func:`polycompress.compare.paired_intervals`: a rule from ``low``
    to ``high``, a point at ``difference`` (F1 of b minus a) and a dashed line at zero.

    ``panels``: columns of ``data`` whose values split the chart into small multiples, wrapped
    ``columns`` to a row so the chart fits the book's text column. The data sit on the facet
    alone: in Vega-Lite a layer that carries its own data is not split by the facet, and would
    draw every row in every panel. Each panel lists only its own ``y`` values.
    ``width`` is one panel's width in pixels; ``a_title``/``b_title`` name the two models in the
    tooltip, after ``fields``; ``params`` are selections or parameters (added to the first
    layer); ``encode`` adds channels (opacity, yOffset).
    """
    tooltip = [*fields, alt.Tooltip("f1_a:Q", title=a_title, format=".3f"),
               alt.Tooltip("f1_b:Q", title=b_title, format=".3f"),
               alt.Tooltip("low:Q", format=".3f"), alt.Tooltip("high:Q", format=".3f")]
    base = alt.Chart().encode(y=y, color=color, **encode)
    rule = base.mark_rule().encode(x=alt.X("low:Q", title=x_title), x2="high:Q")
    if params:
        rule = rule.add_params(*params)
    # one zero line per panel: aggregate the panel's rows to a single datum first
    zero = alt.Chart().transform_aggregate(rows="count()").mark_rule(strokeDash=[3, 3], color="black").encode(
        x=alt.datum(0))
    layers = alt.layer(rule, base.mark_point(filled=True).encode(x="difference:Q", tooltip=tooltip), zero)
    layers = layers.properties(width=width, height=height)
    if not panels:
        return layers.properties(data=data)
    label, order = panel_labels(data, panels)
    data = data.assign(panel=label)
    return layers.facet(data=data, facet=alt.Facet("panel:N", sort=order, title=None,
                                                   header=alt.Header(labelLimit=0, labelFontWeight="bold")),
                        columns=columns).resolve_scale(y="independent").resolve_axis(y="independent")


def facet_data_problems(spec: dict, path: str = "spec") -> list[str]:
    """Where a compiled Vega-Lite ``spec`` has a view inside a facet that carries its own data.

    Such a view is not split by the facet: every panel draws all of its rows (the bug the
    interval charts once had). Returns one line per offending view, empty when there is none.
    """
    problems: list[str] = []

    def inner(node: Any, where: str) -> None:  # a view inside a facet, and everything it holds
        if isinstance(node, dict):
            if "data" in node:
                problems.append(f"{where} has its own data inside a facet")
            for key in ("layer", "hconcat", "vconcat", "concat"):
                for i, child in enumerate(node.get(key, [])):
                    inner(child, f"{where}.{key}[{i}]")
            if "spec" in node:
                inner(node["spec"], f"{where}.spec")

    def outer(node: Any, where: str) -> None:
        if not isinstance(node, dict):
            return
        if "facet" in node and "spec" in node:
            inner(node["spec"], f"{where}.spec")
            return
        for key in ("layer", "hconcat", "vconcat", "concat"):
            for i, child in enumerate(node.get(key, [])):
                outer(child, f"{where}.{key}[{i}]")

    outer(spec, path)
    return problems


if __name__ == "__main__":
    import sys

    print(write_bundle(sys.argv[1] if len(sys.argv) > 1 else f"_static/{BUNDLE_NAME}"))
