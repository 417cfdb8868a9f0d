"""The book builds offline with warnings as errors (Jupyter Book 1, executing its notebooks)."""

import re

import yaml

CHAPTERS = ["data", "methods", "multilingual", "languages", "robustness", "embeddings", "overlap", "scorecard",
            "structured", "runs", "reference_tables"]


def test_book_builds_without_warnings(smoke_book):
    """On the smoke results, as CI can afford; `make book` builds it from the default grid."""
    run = smoke_book["run"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    html = smoke_book["html"]
    data_page = (html / "book" / "data.html").read_text(encoding="utf-8")
    assert data_page.count("polycompress-chart") >= 3  # the three Altair figures
    assert "vega-offline.js" in data_page and "cdn.jsdelivr" not in data_page
    assert data_page.count("const THEBE_JS_URL") == 1
    for chapter in CHAPTERS:
        page = (html / "book" / f"{chapter}.html").read_text(encoding="utf-8")
        assert "Traceback" not in page, chapter


def test_every_chapter_is_in_the_table_of_contents():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert [f"book/{c}" for c in CHAPTERS] == [f for f in files if f.split("/")[-1] in CHAPTERS]
    on_disk = {p.stem for p in (root / "book").glob("*.md")}
    assert on_disk == set(CHAPTERS) | {"intro", "references"}


def test_scorecard_gives_every_claim_a_verdict(smoke_book):
    from polycompress.compare import VERDICTS

    page = (smoke_book["html"] / "book" / "scorecard.html").read_text(encoding="utf-8")
    cells = re.findall(r"<td[^>]*>\s*([^<]*?)\s*</td>", page)
    verdicts = [c for c in cells if c in VERDICTS]
    assert len(verdicts) == 7, cells[:40]  # one per claim row of the scorecard
