"""Tested aggregations the book uses: results with language facts, changes vs dense, robustness.

The chapters never compute a number inline that a reader could not find here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from . import languages

RESULTS_ENV = "POLYCOMPRESS_RESULTS"


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


def scope_counts(config, label: str, num_labels: int = 7) -> dict:
    """Parameters in each pruning scope of a BERT token classifier, from its config alone
    (built on PyTorch's meta device: no weights, no memory)."""
    import torch
    from transformers import AutoModelForTokenClassification

    from .pruning import scope_parameters

    config.num_labels = num_labels
    with torch.device("meta"):
        model = AutoModelForTokenClassification.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    partial = sum(p.numel() for p in scope_parameters(model, "partial").values())
    full = sum(p.numel() for p in scope_parameters(model, "incl_embeddings").values())
    return {"model": label, "parameters": total, "partial scope": partial, "embeddings in scope": full - partial,
            "incl_embeddings scope": full, "embedding share of all": (full - partial) / total}


def schedule_curve(schedule, steps: int, label: str) -> pd.DataFrame:
    """Target sparsity after every optimizer step, marking the steps where masks are recomputed."""
    return pd.DataFrame({"step": range(steps), "sparsity": [schedule.sparsity(t) for t in range(steps)],
                         "update": [schedule.is_update_step(t) for t in range(steps)], "schedule": label})


def run_records(path: Path | str | None = None) -> pd.DataFrame:
    """``done.json`` of every finished run of the book's grid (timings, schedule, model folder)."""
    import json

    folder = (Path(path) if path else results_path()).parent / "runs"
    rows = [json.loads(p.read_text()) for p in sorted(folder.glob("*/done.json"))]
    return pd.DataFrame(rows)


def train_sentences(config) -> int:
    """Training sentences a run sees in all (its languages' expected sizes, which must be known)."""
    sizes = [config.expected_train_size(c) for c in config.languages]
    if None in sizes:
        raise ValueError(f"training size of {config.languages} is unknown before loading the corpora")
    return sum(sizes)


LONG = ["source", "setting", "test_set", "scope", "language", "sparsity", "seed", "f1"]


def as_long(df: pd.DataFrame, source: str = "ours") -> pd.DataFrame:
    """Our results in a long format shared with the paper's tables: sparsity in percent, and
    each dense row repeated under both scopes (dense is sparsity 0 of either curve)."""
    scored = df[df["f1"].notna()].copy()
    scored["sparsity"] = (scored["target_sparsity"] * 100).round().astype(int)
    scored["source"] = source
    dense = scored[scored["method"] == "dense"]
    pruned = scored[scored["method"] != "dense"]
    scopes = sorted(set(pruned["scope"])) or ["partial", "incl_embeddings"]
    out = pd.concat([pruned] + [dense.assign(scope=s) for s in scopes], ignore_index=True)
    return out[LONG]


def relative_to_dense(long: pd.DataFrame) -> pd.DataFrame:
    """Each pruned cell with its dense F1 (same source, setting, test set, scope, language,
    seed) and the relative change ``(f1 - dense) / dense``."""
    keys = ["source", "setting", "test_set", "scope", "language", "seed"]
    dense = long[long["sparsity"] == 0][keys + ["f1"]].rename(columns={"f1": "dense_f1"})
    out = long[long["sparsity"] > 0].merge(dense, on=keys, how="inner", validate="many_to_one")
    out["relative_change"] = (out["f1"] - out["dense_f1"]) / out["dense_f1"]
    return out


def gains_at(long: pd.DataFrame, sparsity: int, setting: str = "multilingual", test_set: str = "regular",
             scope: str = "partial") -> pd.DataFrame:
    """Languages whose F1 at ``sparsity`` is above their dense F1 (the "flip-flop" question)."""
    rel = relative_to_dense(long)
    rows = rel[(rel["sparsity"] == sparsity) & (rel["setting"] == setting) & (rel["test_set"] == test_set)
               & (rel["scope"] == scope)]
    return rows.assign(gains=rows["f1"] > rows["dense_f1"]).sort_values("relative_change", ascending=False)


def multilingual_gain(long: pd.DataFrame, sparsity: int = 0, test_set: str = "regular", scope: str = "partial") -> pd.DataFrame:
    """Per language trained both ways: multilingual minus monolingual F1 at one sparsity."""
    sel = long[(long["sparsity"] == sparsity) & (long["test_set"] == test_set) & (long["scope"] == scope)]
    wide = sel.pivot_table(index=["source", "language", "seed"], columns="setting", values="f1").dropna()
    wide = wide.reset_index()
    wide["gain"] = wide["multilingual"] - wide["monolingual"]
    return wide


def robustness_long(long: pd.DataFrame, min_regular: float = 0.0) -> pd.DataFrame:
    """Perturbed over regular F1 per source, setting, scope, language, sparsity and seed.

    A ratio over a near-zero regular F1 is noise (0.02 / 0.005 = 4); pairs whose regular F1 is
    below ``min_regular`` get ratio NaN, and ``excluded`` marks them so callers can count them.
    """
    keys = ["source", "setting", "scope", "language", "sparsity", "seed"]
    regular = long[long["test_set"] == "regular"][keys + ["f1"]].rename(columns={"f1": "regular_f1"})
    pert = long[long["test_set"] != "regular"].merge(regular, on=keys, how="inner")
    pert["excluded"] = pert["regular_f1"] < min_regular
    pert["ratio"] = (pert["f1"] / pert["regular_f1"]).where(~pert["excluded"])
    return pert


def with_buckets(df: pd.DataFrame) -> pd.DataFrame:
    """Adds the paper's training-size bucket and each language's script and family."""
    meta = languages.table()[["code", "paper_train_size", "script", "family"]].rename(columns={"code": "language"})
    out = df.merge(meta, on="language", how="left")
    out["bucket"] = out["paper_train_size"].map(lambda n: f"{int(n):,}" if pd.notna(n) else "not in paper")
    return out


def correlation(x: pd.Series, y: pd.Series) -> dict:
    """Pearson and Spearman coefficients with p-values (scipy); NaN below 3 points."""
    from scipy.stats import pearsonr, spearmanr

    ok = x.notna() & y.notna()
    x, y = x[ok], y[ok]
    if len(x) < 3 or x.nunique() < 2 or y.nunique() < 2:
        nan = float("nan")
        return {"n": int(len(x)), "pearson": nan, "pearson_p": nan, "spearman": nan, "spearman_p": nan}
    p, s = pearsonr(x, y), spearmanr(x, y)
    return {"n": int(len(x)), "pearson": float(p.statistic), "pearson_p": float(p.pvalue),
            "spearman": float(s.statistic), "spearman_p": float(s.pvalue)}
