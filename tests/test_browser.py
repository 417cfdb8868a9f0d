"""The built book in a real browser, offline: every Altair chart draws, no console errors.

Headless Chromium (Debian's ``chromium`` and ``chromium-driver``; ``.ci/run`` installs them)
driven by Selenium opens the pages from disk with the network switched off. Skipped where
Chromium is missing, except under CI, where that is a failure.
"""

import os
import shutil
import time

import pytest

#: a laptop screen: the book's text column is then at its usual width
WINDOW = (1280, 900)

#: For every drawn chart: marks in a facet panel whose facet field differs from the panel's
#: (a panel drawing another panel's rows), charts wider than the article column, and printed
#: outputs that run past their box. Vega's scenegraph: a mark has ``items``; a facet panel is an
#: item of the mark named "cell", whose ``datum`` holds the panel's facet values.
LAYOUT_CHECK = """
const article = document.querySelector('article') || document.body;
const right = article.getBoundingClientRect().right;
const out = {foreign: [], wide: [], cut: [], panels: 0, charts: 0};
for (const el of document.querySelectorAll('.polycompress-chart')) {
  const drawn = el.querySelector('canvas, svg.marks');
  if (!drawn) continue;
  out.charts += 1;
  const box = drawn.getBoundingClientRect();
  if (box.right > right + 1) out.wide.push([el.id, Math.round(box.width), Math.round(right - box.left)]);
  const view = el.polycompressView, spec = el.polycompressSpec;
  if (!view || !spec || !spec.facet) continue;
  const f = spec.facet;
  const fields = [f.field, f.row && f.row.field, f.column && f.column.field].filter(Boolean);
  // a mark's items are scene items; a group item's items are marks again
  const leaves = (item, acc) => {
    for (const mark of (item.items || [])) {
      for (const it of (mark.items || [])) {
        if (mark.marktype === 'group') leaves(it, acc); else if (it.datum) acc.push(it.datum);
      }
    }
    return acc;
  };
  const cells = [];
  const findCells = (mark) => {
    if (mark.name === 'cell') { cells.push(...mark.items); return; }
    if (mark.marktype !== 'group') return;
    for (const it of (mark.items || [])) for (const m of (it.items || [])) findCells(m);
  };
  findCells(view.scenegraph().root);
  for (const cell of cells) {
    out.panels += 1;
    for (const d of leaves(cell, [])) {
      for (const field of fields) {
        if (Object.prototype.hasOwnProperty.call(d, field) && d[field] !== cell.datum[field]) {
          out.foreign.push([el.id, field, String(cell.datum[field]), String(d[field])]);
        }
      }
    }
  }
}
for (const pre of document.querySelectorAll('div.cell_output pre')) {
  if (pre.scrollWidth > pre.clientWidth + 1) out.cut.push(pre.textContent.slice(0, 60));
}
// a table wider than the column is cut unless its output box scrolls
for (const table of document.querySelectorAll('div.cell_output table')) {
  const box = table.closest('div.cell_output');
  const scrolls = ['auto', 'scroll'].includes(getComputedStyle(box).overflowX);
  if (table.getBoundingClientRect().right > right + 1 && !scrolls) out.cut.push('table: ' + table.textContent.slice(0, 50));
}
return out;
"""

PAGES = ["intro", "data", "methods", "multilingual", "languages", "robustness", "embeddings", "overlap",
         "scorecard", "structured", "runs", "reference_tables", "fidelity"]


@pytest.fixture(scope="module")
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("CI"):
            pytest.fail("CI needs Debian's chromium and chromium-driver (see .ci/run)")
        pytest.skip("chromium / chromedriver not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                # no name resolves and every connection goes to a closed port: nothing can load
                "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    drv = webdriver.Chrome(service=Service(driver), options=options)
    drv.execute_cdp_cmd("Network.enable", {})
    drv.execute_cdp_cmd("Network.emulateNetworkConditions",
                        {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    yield drv
    drv.quit()


def charts(drv) -> tuple[int, int]:
    """(charts on the page, charts that drew a canvas or an SVG)."""
    total = drv.execute_script("return document.querySelectorAll('.polycompress-chart').length")
    drawn = drv.execute_script(
        "return Array.from(document.querySelectorAll('.polycompress-chart'))"
        ".filter(e => e.querySelector('canvas, svg.marks')).length")
    return total, drawn


def test_the_browser_sees_console_errors_and_undrawn_charts(browser, tmp_path):
    """The check itself can fail: a page with an error and a chart that never draws."""
    page = tmp_path / "bad.html"
    page.write_text('<div class="polycompress-chart"></div><script>console.error("boom")</script>'
                    '<img src="https://cdn.example.org/x.png">')
    browser.get(page.as_uri())
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert any("boom" in e["message"] for e in severe)
    assert any("cdn.example.org" in e["message"] for e in severe)  # the network is off
    assert charts(browser) == (1, 0)


def _bad_facet_page(tmp_path, root):
    """A page with one faceted chart built the old, wrong way: its layers carry their own data,
    so both panels draw every row."""
    import altair as alt
    import pandas as pd

    from polycompress import plotting

    data = pd.DataFrame({"setting": ["multilingual", "multilingual", "monolingual"],
                         "language": ["sw", "yo", "yo"], "difference": [0.1, -0.1, 0.2]})
    base = alt.Chart(data).encode(y="language:N")
    bad = (base.mark_point().encode(x="difference:Q") + alt.Chart().mark_rule().encode(x=alt.datum(0))).properties(
        width=1400).facet(data=data, column="setting:N")
    bundle = root / "_static" / plotting.BUNDLE_NAME
    if not bundle.is_file():
        plotting.write_bundle(bundle)
    page = tmp_path / "facet.html"
    page.write_text(f'<article><script src="{bundle.as_uri()}"></script>'
                    + plotting.renderer(bad.to_dict())["text/html"] + "<div class='cell_output'><pre>"
                    + "x" * 3000 + "</pre></div></article>")
    return page


def _wait_for_charts(drv) -> tuple[int, int]:
    total, drawn = charts(drv)
    deadline = time.time() + 20
    while drawn < total and time.time() < deadline:  # vega-embed draws asynchronously
        time.sleep(0.2)
        total, drawn = charts(drv)
    return total, drawn


def test_the_layout_check_sees_foreign_panel_marks_wide_charts_and_cut_outputs(browser, tmp_path):
    from pathlib import Path

    page = _bad_facet_page(tmp_path, Path(__file__).resolve().parents[1])
    browser.get(page.as_uri())
    assert _wait_for_charts(browser) == (1, 1)
    found = browser.execute_script(LAYOUT_CHECK)
    assert found["panels"] == 2
    # the monolingual panel draws multilingual rows (and the other way round)
    assert {tuple(f[2:]) for f in found["foreign"]} >= {("monolingual", "multilingual")}
    assert len(found["wide"]) == 1 and len(found["cut"]) == 1


def test_every_chart_draws_offline_without_console_errors(smoke_book, browser):
    assert smoke_book["run"].returncode == 0
    seen = panels = 0
    for name in PAGES:
        browser.get((smoke_book["html"] / "book" / f"{name}.html").as_uri())
        total, drawn = _wait_for_charts(browser)
        errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, (name, errors)
        assert drawn == total, (name, f"{drawn} of {total} charts drawn")
        seen += total
        layout = browser.execute_script(LAYOUT_CHECK)
        assert not layout["foreign"], (name, "a panel draws another panel's rows", layout["foreign"][:5])
        assert not layout["wide"], (name, "charts wider than the text column (id, width, room)", layout["wide"])
        assert not layout["cut"], (name, "printed outputs cut at the right edge", layout["cut"])
        panels += layout["panels"]
    assert seen >= 15  # the chapters' figures, not an empty book
    assert panels >= 20  # faceted charts were inspected panel by panel
