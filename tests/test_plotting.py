import re

import altair as alt
import pandas as pd

from polycompress import plotting


def test_bundle_is_a_classic_script_defining_vegaembed():
    js = plotting.bundle_js()
    assert not re.search(r"^\s*(import|export)\s", js, re.M)  # loadable from file:// pages
    assert "window.vegaEmbed" in js and js.startswith("(() => {")


def test_renderer_emits_json_for_lab_and_offline_html_for_the_book():
    chart = alt.Chart(pd.DataFrame({"x": [1, 2]})).mark_bar().encode(x="x:Q")
    bundle = plotting.renderer(chart.to_dict())
    assert any(k.startswith("application/vnd.vegalite.") for k in bundle)
    html = bundle["text/html"]
    assert "vegaEmbed" in html and "cdn" not in html.lower()
    assert "<script src" not in html  # nothing fetched; $schema is an identifier, never loaded
