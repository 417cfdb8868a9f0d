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


def _pairs() -> pd.DataFrame:
    """Paired differences in two panels that hold different languages."""
    rows = [("multilingual", "en", 0.1), ("multilingual", "sw", 0.2), ("multilingual", "yo", -0.1),
            ("monolingual", "en", 0.05)]
    return pd.DataFrame([{"setting": s, "language": lang, "difference": d, "low": d - 0.1, "high": d + 0.1,
                          "f1_a": 0.5, "f1_b": 0.5 + d, "verdict": "higher"} for s, lang, d in rows])


def test_interval_chart_puts_its_data_on_the_facet_only():
    chart = plotting.interval_chart(_pairs(), alt.Y("language:N"), plotting.verdict_color("b is"), "b − a F1",
                                    "a", "b", panels=["setting"])
    spec = chart.to_dict()
    assert spec["facet"]["field"] == "panel" and "data" in spec
    assert plotting.facet_data_problems(spec) == []
    assert spec["facet"]["sort"] == ["monolingual", "multilingual"]


def test_the_facet_check_catches_a_layer_with_its_own_data():
    """The construction the interval charts once used: layers built on the data, then faceted."""
    data = _pairs()
    base = alt.Chart(data).encode(y="language:N")
    bad = (base.mark_rule().encode(x="low:Q", x2="high:Q") + base.mark_point().encode(x="difference:Q")
           + alt.Chart().mark_rule().encode(x=alt.datum(0))).facet(data=data, row="setting:N")
    problems = plotting.facet_data_problems(bad.to_dict())
    assert problems and all("own data" in p for p in problems)


def test_panel_order_follows_the_fields_values_not_their_text():
    data = pd.DataFrame({"sparsity": [90, 5, 50], "scope": ["a", "a", "a"]})
    _, order = plotting.panel_labels(data, ["scope", "sparsity"])
    assert order == ["a · 5", "a · 50", "a · 90"]
