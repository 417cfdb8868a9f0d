"""The one table of languages the project knows (``data/languages.csv``).

Each row is a language *in a corpus*: PAN-X Swahili (``sw``) and MasakhaNER Swahili (``swa``)
are two rows sharing ``iso639_3``. Codes are ISO 639-1 for PAN-X (as XTREME names its
folders) and ISO 639-3 for MasakhaNER (as its release does), so they never collide.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from .settings import repo_data_dir

CORPORA = ("panx", "masakhaner2", "masakhaner1")

REQUIRED_COLUMNS = (
    "code", "iso639_3", "name", "corpus", "script", "family", "branch",
    "paper_train_size", "paper_pretraining_share_pct", "paper_mono_subset",
    "in_mbert_pretraining", "in_xlmr_pretraining",
    "script_source", "family_source", "branch_source", "paper_source", "pretraining_source",
)


class UnknownLanguageError(KeyError):
    """A language code that is not in ``data/languages.csv``."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


@dataclass(frozen=True)
class Language:
    """One row of the table. ``paper_train_size`` is None for languages not in the paper."""

    code: str
    iso639_3: str
    name: str
    corpus: str
    script: str
    family: str
    branch: str
    paper_train_size: int | None
    paper_pretraining_share_pct: float | None
    paper_mono_subset: bool
    in_mbert_pretraining: bool
    in_xlmr_pretraining: bool


@lru_cache(maxsize=1)
def table() -> pd.DataFrame:
    """The metadata table, validated, indexed by code (one row per language and corpus)."""
    path = repo_data_dir() / "languages.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    for col in ("code", "iso639_3", "name", "corpus", "script", "family", "branch"):
        empty = df.index[df[col].str.strip().isin(["", "Missing"])].tolist()
        if empty:
            # +2: one for the header line, one because CSV lines count from 1
            raise ValueError(f"{path}, line {empty[0] + 2}: empty or 'Missing' {col}")
    dup = df["code"][df["code"].duplicated()].tolist()
    if dup:
        raise ValueError(f"{path}: duplicated codes {dup}")
    bad = sorted(set(df["corpus"]) - set(CORPORA))
    if bad:
        raise ValueError(f"{path}: unknown corpora {bad}; known: {CORPORA}")
    df["paper_train_size"] = pd.to_numeric(df["paper_train_size"]).astype("Int64")
    df["paper_pretraining_share_pct"] = pd.to_numeric(df["paper_pretraining_share_pct"])
    for col in ("paper_mono_subset", "in_mbert_pretraining", "in_xlmr_pretraining"):
        df[col] = df[col].map({"True": True, "False": False, "": False}).astype(bool)
    return df.set_index("code", drop=False)


def get(code: str) -> Language:
    """The language with this code; a clear error naming the known codes otherwise."""
    df = table()
    if code not in df.index:
        raise UnknownLanguageError(
            f"unknown language code {code!r}; known codes: {' '.join(df.index)} (data/languages.csv)"
        )
    row = df.loc[code]
    size = row["paper_train_size"]
    share = row["paper_pretraining_share_pct"]
    return Language(
        code=code, iso639_3=row["iso639_3"], name=row["name"], corpus=row["corpus"],
        script=row["script"], family=row["family"], branch=row["branch"],
        paper_train_size=None if pd.isna(size) else int(size),
        paper_pretraining_share_pct=None if pd.isna(share) else float(share),
        paper_mono_subset=bool(row["paper_mono_subset"]),
        in_mbert_pretraining=bool(row["in_mbert_pretraining"]),
        in_xlmr_pretraining=bool(row["in_xlmr_pretraining"]),
    )


def codes(corpus: str | None = None) -> list[str]:
    """All codes, or those of one corpus, in table order."""
    df = table()
    if corpus is not None:
        if corpus not in CORPORA:
            raise ValueError(f"unknown corpus {corpus!r}; known: {CORPORA}")
        df = df[df["corpus"] == corpus]
    return df["code"].tolist()
