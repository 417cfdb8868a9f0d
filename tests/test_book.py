"""The book builds offline with warnings as errors (Jupyter Book 1, executing its notebooks)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from polycompress import plotting

ROOT = Path(__file__).resolve().parents[1]


def test_book_builds_without_warnings(real_mirror, smoke_grid, tmp_path):
    """On the smoke results, as CI can afford; `make book` builds it from the default grid."""
    bundle = ROOT / "_static" / plotting.BUNDLE_NAME
    if not bundle.is_file():
        plotting.write_bundle(bundle)
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent))
    env = {**os.environ, "POLYCOMPRESS_DATA": str(real_mirror), "POLYCOMPRESS_RESULTS": str(smoke_grid["out"])}
    run = subprocess.run(
        [jb, "build", str(ROOT), "--path-output", str(tmp_path), "-W", "-n", "--keep-going"],
        capture_output=True, text=True, env=env, timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    html = tmp_path / "_build" / "html"
    data_page = (html / "book" / "data.html").read_text(encoding="utf-8")
    assert data_page.count("polycompress-chart") >= 3  # the three Altair figures
    assert "vega-offline.js" in data_page and "cdn.jsdelivr" not in data_page
    assert data_page.count("const THEBE_JS_URL") == 1
    results_page = (html / "book" / "results.html").read_text(encoding="utf-8")
    assert "polycompress-chart" in results_page and "Traceback" not in results_page
