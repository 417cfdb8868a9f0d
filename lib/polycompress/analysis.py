"""Tested aggregations the book uses: results with language facts, changes vs dense, robustness.

The chapters never compute a number inline that a reader could not find here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from . import languages

RESULTS_ENV = "POLYCOMPRESS_RESULTS"
KEYS = ["setting", "language", "test_set", "seed"]


def results_path() -> Path:
    """``$POLYCOMPRESS_RESULTS`` (a grid's output folder), default ``results/default``."""
    return Path(os.environ.get(RESULTS_ENV, "results/default")) / "results.parquet"


def load_results(path: Path | str | None = None) -> pd.DataFrame:
    """The results table with each language's corpus, script, family and paper size bucket."""
    path = Path(path) if path else results_path()
    if not path.is_file():
        raise FileNotFoundError(f"no results at {path}: run a grid first (make book runs the default one), "
                                f"or point {RESULTS_ENV} at a grid's output folder")
    df = pd.read_parquet(path)
    meta = languages.table()[["code", "name", "corpus", "script", "family", "paper_train_size"]]
    return df.merge(meta.rename(columns={"code": "language"}), on="language", how="left")


def versus_dense(df: pd.DataFrame) -> pd.DataFrame:
    """Pruned rows with the dense F1 of the same setting, language, test set and seed, and
    ``delta_f1`` (absolute) and ``relative_f1`` ((pruned - dense) / dense)."""
    scored = df[df["f1"].notna()]
    dense = scored[scored["method"] == "dense"][KEYS + ["f1"]].rename(columns={"f1": "dense_f1"})
    pruned = scored[scored["method"] != "dense"].merge(dense, on=KEYS, how="inner")
    pruned["delta_f1"] = pruned["f1"] - pruned["dense_f1"]
    pruned["relative_f1"] = pruned["delta_f1"] / pruned["dense_f1"]
    return pruned


def robustness(df: pd.DataFrame) -> pd.DataFrame:
    """Perturbed over regular F1 for every run, language and perturbation scope."""
    scored = df[df["f1"].notna()]
    regular = scored[scored["test_set"] == "regular"][["run_id", "language", "f1"]].rename(columns={"f1": "regular_f1"})
    perturbed = scored[scored["test_set"] != "regular"].merge(regular, on=["run_id", "language"], how="inner")
    perturbed["ratio"] = perturbed["f1"] / perturbed["regular_f1"]
    return perturbed
