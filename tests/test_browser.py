"""The built book in a real browser, offline: every Altair chart draws, no console errors.

Headless Chromium (Debian's ``chromium`` and ``chromium-driver``; ``.ci/run`` installs them)
driven by Selenium opens the pages from disk with the network switched off. Skipped where
Chromium is missing, except under CI, where that is a failure.
"""

import os
import shutil
import time

import pytest

PAGES = ["intro", "data", "methods", "multilingual", "languages", "robustness", "embeddings", "overlap",
         "scorecard", "structured", "runs", "reference_tables"]


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


def test_every_chart_draws_offline_without_console_errors(smoke_book, browser):
    assert smoke_book["run"].returncode == 0
    seen = 0
    for name in PAGES:
        browser.get((smoke_book["html"] / "book" / f"{name}.html").as_uri())
        total, drawn = charts(browser)
        deadline = time.time() + 20
        while drawn < total and time.time() < deadline:  # vega-embed draws asynchronously
            time.sleep(0.2)
            total, drawn = charts(browser)
        errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, (name, errors)
        assert drawn == total, (name, f"{drawn} of {total} charts drawn")
        seen += total
    assert seen >= 15  # the chapters' figures, not an empty book
