"""``polycompress data check``: load every language of the mirror and check its counts.

The expected sizes are those the mirror's README states (PAN-X training sizes are the paper's
Table 1, which ``data/languages.csv`` carries); any difference, unknown folder or unreadable
file is a problem, and problems make the command fail. A folder of a WikiANN or MasakhaNER
language the table lacks is loaded and counted too; the README states no sizes for it, so its
sizes are not compared (a note says so). ``--corpus NAME=FOLDER`` checks a corpus of one's own
instead: every file read, with its tagging scheme and the tags converted to IOB2.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from . import byo, languages
from .conll import CorpusFormatError
from .corpora import LAYOUTS, SPLITS, load_language, mention_counts
from .tags import ALL_TYPES

#: Split sizes stated by the mirror's README: sets of allowed values or inclusive ranges.
PANX_EVAL_SIZES = {100, 1_000, 10_000}
#: The README says "about 3,400-7,800 / 480-1,100 / 970-2,200": endpoints rounded to their
#: last non-zero digit, so a count is in range if it *rounds* into it (see ``_in_rounded_range``).
MASAKHANER2_RANGES = {"train": (3_400, 7_800), "validation": (480, 1_100), "test": (970, 2_200)}
MASAKHANER1_TRAIN = {"amh": 1_750}


@dataclass
class CheckResult:
    table: pd.DataFrame
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _rounding_unit(endpoint: int) -> int:
    """10 ** (trailing zeros): 3,400 -> 100, 480 -> 10."""
    unit = 1
    while endpoint % (unit * 10) == 0:
        unit *= 10
    return unit


def _in_rounded_range(n: int, lo: int, hi: int) -> bool:
    """True if ``n`` rounds to a value within [lo, hi] at each endpoint's precision."""
    return lo - _rounding_unit(lo) / 2 <= n < hi + _rounding_unit(hi) / 2


def _expected_problems(code: str, corpus: str, sizes: dict[str, int]) -> list[str]:
    out = []
    if corpus == "panx":
        want = languages.get(code).paper_train_size
        if sizes["train"] != want:
            out.append(f"{code}: {sizes['train']} training sentences, Table 1 says {want}")
        for split in ("validation", "test"):
            if sizes[split] not in PANX_EVAL_SIZES:
                out.append(f"{code}: {sizes[split]} {split} sentences, expected one of {sorted(PANX_EVAL_SIZES)}")
    elif corpus == "masakhaner2":
        for split, (lo, hi) in MASAKHANER2_RANGES.items():
            if not _in_rounded_range(sizes[split], lo, hi):
                out.append(f"{code}: {sizes[split]} {split} sentences, README says about {lo:,}-{hi:,}")
    elif corpus == "masakhaner1" and code in MASAKHANER1_TRAIN and sizes["train"] != MASAKHANER1_TRAIN[code]:
        out.append(f"{code}: {sizes['train']} training sentences, README says {MASAKHANER1_TRAIN[code]}")
    return out


def check_mirror(root: Path, progress: bool = True) -> CheckResult:
    """Load every language folder under ``root`` and compare with the expected counts."""
    rows, problems, notes = [], [], []
    known = set(languages.codes())
    found: list[tuple[str, str]] = []
    beyond: list[str] = []
    for corpus in languages.CORPORA:
        folder = root / LAYOUTS[corpus].folder
        if not folder.is_dir():
            notes.append(f"no {corpus} folder in the mirror")
            continue
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            if sub.name not in known and languages.corpus_of(sub.name) == corpus:
                beyond.append(sub.name)
                found.append((sub.name, corpus))
            elif sub.name not in known:
                problems.append(f"{sub}: {sub.name!r} is neither in data/languages.csv nor a {corpus} language")
            elif languages.get(sub.name).corpus != corpus:
                problems.append(f"{sub}: {sub.name!r} belongs to {languages.get(sub.name).corpus} in data/languages.csv")
            else:
                found.append((sub.name, corpus))
    absent = sorted(known - {c for c, _ in found})
    if absent:
        notes.append(f"in data/languages.csv but not in the mirror: {' '.join(absent)}")
    if beyond:
        notes.append(f"beyond data/languages.csv, sizes not compared (no stated size): {' '.join(beyond)}")

    for code, corpus in tqdm(found, desc="data check", unit="lang", disable=not progress):
        try:
            ds, report = load_language(code, root=root, harmonise_tags=False)
        except CorpusFormatError as err:
            problems.append(str(err))
            continue
        sizes = {s: len(ds[s]) for s in SPLITS}
        if code not in beyond:
            problems += _expected_problems(code, corpus, sizes)
        row = {"language": code, "corpus": corpus, **sizes}
        total = sum((mention_counts(ds[s]) for s in SPLITS), start=Counter())
        for kind in ALL_TYPES:
            row[kind] = total.get(kind, 0)
        row["iob2_repaired"] = sum(report.iob2_repaired.values())
        row["empty_tokens_dropped"] = sum(report.empty_tokens_dropped.values())
        rows.append(row)

    rahimi = root / LAYOUTS["wikiann-rahimi"].folder
    for sub in sorted(p for p in rahimi.iterdir() if p.is_dir()) if rahimi.is_dir() else []:
        problems += _compare_with_panx(sub.name, root)
    return CheckResult(pd.DataFrame(rows), problems, notes)


def _compare_with_panx(code: str, root: Path) -> list[str]:
    """The original WikiANN release must equal the PAN-X copy sentence for sentence."""
    try:
        raw, _ = load_language(code, root=root, layout="wikiann-rahimi")
        panx, _ = load_language(code, root=root)
    except (CorpusFormatError, KeyError) as err:
        return [str(err)]
    out = []
    for split in SPLITS:
        a, b = raw[split], panx[split]
        if len(a) != len(b):
            out.append(f"wikiann-rahimi/{code} {split}: {len(a)} sentences, PAN-X has {len(b)}")
            continue
        for i, (x, y) in enumerate(zip(a, b)):
            if x["tokens"] != y["tokens"] or x["ner_tags"] != y["ner_tags"]:
                out.append(f"wikiann-rahimi/{code} {split}: sentence {i + 1} differs from PAN-X")
                break
    return out


def check_corpora(corpora: list[byo.UserCorpus]) -> CheckResult:
    """Load registered corpora of one's own (tags not harmonised) and count what reading did:
    sentences and mentions per type, each file's tagging scheme, tags converted to IOB2,
    IOB2 violations repaired, ``-DOCSTART-`` lines and empty tokens skipped."""
    rows, problems = [], []
    for corpus in corpora:
        try:
            ds, report = load_language(corpus.name, harmonise_tags=False)
        except (CorpusFormatError, byo.CorpusSpecError) as err:
            problems.append(str(err))
            continue
        total = sum((mention_counts(ds[s]) for s in SPLITS), start=Counter())
        rows.append({
            "language": corpus.name, "corpus": str(corpus.path), **{s: len(ds[s]) for s in SPLITS},
            **dict(sorted(total.items())),
            "scheme": ", ".join(sorted(set(report.schemes.values()))),
            "iob2_converted": sum(report.iob2_converted.values()), "iob2_repaired": sum(report.iob2_repaired.values()),
            "docstart_lines": sum(report.docstart_lines.values()),
            "empty_tokens_dropped": sum(report.empty_tokens_dropped.values()),
        })
    notes = ["harmonised runs keep PER, ORG and LOC; mentions of other types become O (counted per run)"]
    return CheckResult(pd.DataFrame(rows).fillna(0), problems, notes)
