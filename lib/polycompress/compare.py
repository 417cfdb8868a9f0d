"""Paired comparisons of runs, with bootstrap intervals, and the verdict rule of the scorecard.

A *pair* is two runs scored on the same test sentences of one language and test set: a pruned
run against the dense run of the same setting, training languages and seed (:func:`dense_pairs`),
or a multilingual run against the monolingual run of the same language, method, scope, sparsity
and seed (:func:`setting_pairs`). :func:`paired_intervals` gives each pair ``F1(b) - F1(a)`` with
a paired bootstrap interval over test sentences (:mod:`polycompress.intervals`), and marks it
"collapsed" when either model scores below :data:`COLLAPSE_F1` on the regular test set.
:func:`levels` places one model's F1 against a threshold instead (the robustness headline).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from .config import fill_subnetworks
from .evaluation import sentence_counts
from .intervals import N_RESAMPLES, f1_level, micro_f1, paired_difference

PAIR_KEYS = ["language", "test_set"]
INTERVAL_COLUMNS = ["f1_a", "f1_b", "difference", "low", "high", "n_sentences", "regular_a", "regular_b",
                    "collapsed", "verdict"]
VERDICTS = ("holds", "holds in part", "cannot tell", "mixed", "does not hold")
#: The collapse rule, the one place it is written: a model whose regular-test F1 on a language is
#: below this has not learned to tag that language (a tagger that predicts O everywhere scores
#: 0). A pair with such a model on either side is "collapsed": drawn in its own colour, and left
#: out of every verdict count and robustness ratio, with the number left out stated.
COLLAPSE_F1 = 0.2
#: "near zero" in the paper's robustness headline (Sec. 4.3): above every one of its dense
#: models' perturbed F1 (Tables 4 and 8, 50 cells, at most 0.039), far below its pruned ones
NEAR_ZERO_F1 = 0.1
#: a level's position against a threshold, read as a direction for :func:`verdict`
POSITION_DIRECTION = {"below": "lower", "above": "higher", "unclear": "no clear difference", "collapsed": "collapsed"}


def _scored(results: pd.DataFrame) -> pd.DataFrame:
    cols = ["run_id", "setting", "train_languages", "language", "method", "scope", "subnetworks", "target_sparsity",
            "seed", "test_set", "f1"]
    results = fill_subnetworks(results)  # a table from before non-shared runs: all shared
    return results.loc[results["f1"].notna(), cols]


def dense_pairs(results: pd.DataFrame) -> pd.DataFrame:
    """Every pruned (run, language, test set) with its dense twin: ``run_a`` dense, ``run_b`` pruned."""
    s = _scored(results)
    keys = ["setting", "train_languages", "seed", *PAIR_KEYS]
    dense = s[s["method"] == "dense"][keys + ["run_id"]].rename(columns={"run_id": "run_a"})
    pruned = s[s["method"] != "dense"].rename(columns={"run_id": "run_b"})
    out = pruned.merge(dense, on=keys, how="inner", validate="many_to_one")
    return out[["run_a", "run_b", "setting", "method", "scope", "subnetworks", "target_sparsity", "seed", *PAIR_KEYS]]


def setting_pairs(results: pd.DataFrame) -> pd.DataFrame:
    """Every language trained both ways: ``run_a`` monolingual, ``run_b`` multilingual, same
    method, scope, sparsity and seed. Dense runs have scope "none" in both settings."""
    s = _scored(results)
    keys = ["method", "scope", "subnetworks", "target_sparsity", "seed", *PAIR_KEYS]
    mono = s[s["setting"] == "monolingual"][keys + ["run_id"]].rename(columns={"run_id": "run_a"})
    multi = s[s["setting"] == "multilingual"][keys + ["run_id"]].rename(columns={"run_id": "run_b"})
    return mono.merge(multi, on=keys, how="inner", validate="one_to_one")[["run_a", "run_b", *keys]]


def subnetwork_pairs(results: pd.DataFrame) -> pd.DataFrame:
    """Runs that differ only in their subnetworks: ``run_a`` shared, ``run_b`` non-shared (same
    setting, training languages, method, sparsity and seed)."""
    s = _scored(results)
    keys = ["setting", "train_languages", "method", "scope", "target_sparsity", "seed", *PAIR_KEYS]
    shared = s[(s["subnetworks"] == "shared") & (s["method"] != "dense")][keys + ["run_id"]]
    own = s[s["subnetworks"] == "non_shared"][keys + ["run_id"]]
    return (shared.rename(columns={"run_id": "run_a"}).merge(own.rename(columns={"run_id": "run_b"}), on=keys,
                                                               how="inner", validate="one_to_one")[["run_a", "run_b", *keys]])


def scope_pairs(results: pd.DataFrame) -> pd.DataFrame:
    """Pruned runs that differ only in scope: ``run_a`` partial, ``run_b`` incl_embeddings (same
    setting, training languages, method, sparsity and seed)."""
    s = _scored(results)
    keys = ["setting", "train_languages", "method", "subnetworks", "target_sparsity", "seed", *PAIR_KEYS]
    part = s[s["scope"] == "partial"][keys + ["run_id"]].rename(columns={"run_id": "run_a"})
    emb = s[s["scope"] == "incl_embeddings"][keys + ["run_id"]].rename(columns={"run_id": "run_b"})
    return part.merge(emb, on=keys, how="inner", validate="one_to_one")[["run_a", "run_b", *keys]]


def method_pairs(results: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Runs that differ only in their (shared-structure) method: ``run_a`` method ``a``, ``run_b``
    method ``b``, same setting, training languages, sparsity and seed."""
    s = _scored(results)
    s = s[s["subnetworks"] == "shared"]
    keys = ["setting", "train_languages", "target_sparsity", "seed", *PAIR_KEYS]
    left = s[s["method"] == a][keys + ["run_id"]].rename(columns={"run_id": "run_a"})
    right = s[s["method"] == b][keys + ["run_id"]].rename(columns={"run_id": "run_b"})
    return left.merge(right, on=keys, how="inner", validate="one_to_one")[["run_a", "run_b", *keys]]


def counts_by_run(predictions: pd.DataFrame) -> dict[tuple[str, str, str], tuple[np.ndarray, list]]:
    """(run_id, language, test_set) -> (per-sentence counts (n, 3), gold tags in sentence order)."""
    out = {}
    for key, group in predictions.groupby(["run_id", "language", "test_set"], sort=False):
        group = group.sort_values("sentence")
        if not np.array_equal(group["sentence"].to_numpy(), np.arange(len(group))):
            raise ValueError(f"predictions of {key} do not number their sentences 0..{len(group) - 1}")
        gold = [list(g) for g in group["gold"]]
        out[key] = (sentence_counts(gold, [list(p) for p in group["pred"]]), gold)
    return out


def paired_intervals(pairs: pd.DataFrame, predictions: pd.DataFrame, n_resamples: int = N_RESAMPLES,
                     seed: int = 0, collapse_f1: float = COLLAPSE_F1) -> pd.DataFrame:
    """``pairs`` with ``f1_a``, ``f1_b``, ``difference`` (b - a), ``low``, ``high``, ``verdict``,
    and each model's F1 on the language's regular test set (``regular_a``, ``regular_b``).

    ``verdict`` is the interval's direction ("higher", "lower", "no clear difference"), or
    "collapsed" when either model's regular F1 is below ``collapse_f1`` (:data:`COLLAPSE_F1`):
    a difference against a model that learned nothing says nothing about the claim.
    Refuses a pair whose two runs were not scored on the same gold sentences: such a
    difference would not be paired.
    """
    counts = counts_by_run(predictions[predictions["run_id"].isin(set(pairs["run_a"]) | set(pairs["run_b"]))])
    rows = []
    for pair in pairs.itertuples(index=False):
        a = counts.get((pair.run_a, pair.language, pair.test_set))
        b = counts.get((pair.run_b, pair.language, pair.test_set))
        if a is None or b is None:
            raise KeyError(f"no predictions for {pair.language}/{pair.test_set} of run "
                           f"{pair.run_a if a is None else pair.run_b}")
        if a[1] != b[1]:
            raise ValueError(f"runs {pair.run_a} and {pair.run_b} were scored on different "
                             f"{pair.language}/{pair.test_set} sentences")
        d = paired_difference(a[0], b[0], n_resamples=n_resamples, seed=seed)
        regular = [_regular_f1(counts, run, pair.language) for run in (pair.run_a, pair.run_b)]
        collapsed = min(regular) < collapse_f1
        rows.append({"f1_a": d.f1_a, "f1_b": d.f1_b, "difference": d.difference, "low": d.low, "high": d.high,
                     "n_sentences": d.n_sentences, "regular_a": regular[0], "regular_b": regular[1],
                     "collapsed": collapsed, "verdict": "collapsed" if collapsed else d.verdict})
    scored = pd.DataFrame(rows, index=range(len(pairs)), columns=INTERVAL_COLUMNS)
    return pd.concat([pairs.reset_index(drop=True), scored], axis=1)


def _regular_f1(counts: dict, run: str, language: str) -> float:
    """A run's micro F1 on a language's regular test set, from its per-sentence counts."""
    if (run, language, "regular") not in counts:
        raise KeyError(f"no regular-test predictions for {language} of run {run}: the collapse rule needs them")
    return float(micro_f1(*counts[(run, language, "regular")][0].T))


def levels(runs: pd.DataFrame, predictions: pd.DataFrame, threshold: float, n_resamples: int = N_RESAMPLES,
           seed: int = 0) -> pd.DataFrame:
    """``runs`` (run_id, language, test_set, ...) with each model's F1 there, its bootstrap
    interval (``low``, ``high``), its regular-test F1 and ``position`` against ``threshold``:
    "above" / "below" when the interval lies wholly on one side, "unclear" otherwise, and
    "collapsed" when the model's regular F1 is below :data:`COLLAPSE_F1`."""
    counts = counts_by_run(predictions[predictions["run_id"].isin(set(runs["run_id"]))])
    rows = []
    for r in runs.itertuples(index=False):
        if (r.run_id, r.language, r.test_set) not in counts:
            raise KeyError(f"no predictions for {r.language}/{r.test_set} of run {r.run_id}")
        level = f1_level(counts[(r.run_id, r.language, r.test_set)][0], n_resamples=n_resamples, seed=seed)
        regular = _regular_f1(counts, r.run_id, r.language)
        rows.append({"f1": level.f1, "low": level.low, "high": level.high, "regular_f1": regular,
                     "position": "collapsed" if regular < COLLAPSE_F1 else level.against(threshold)})
    scored = pd.DataFrame(rows, index=range(len(runs)), columns=["f1", "low", "high", "regular_f1", "position"])
    return pd.concat([runs.drop(columns=[c for c in scored.columns if c in runs]).reset_index(drop=True), scored],
                     axis=1)


def seed_spread(intervals: pd.DataFrame, keys: Iterable[str]) -> pd.DataFrame:
    """Per cell of ``keys`` (without ``seed``): seeds, mean difference and its standard
    deviation across seeds (NaN with one seed: the spread is then unknown, not zero)."""
    keys = [k for k in keys if k != "seed"]
    g = intervals.groupby(keys)["difference"]
    return g.agg(seeds="count", mean_difference="mean", seed_sd="std").reset_index()


def verdict(directions: Iterable[str], expected: str) -> str:
    """The scorecard's rule over the paired intervals of one claim's cells.

    ``directions`` are the ``verdict`` values of :func:`paired_intervals` ("higher", "lower",
    "no clear difference", "collapsed"); ``expected`` is the direction the claim predicts.
    Collapsed cells are left out (the caller states how many). Every other cell clearly in the
    expected direction: "holds"; some, the rest unclear: "holds in part"; none clear:
    "cannot tell"; cells clearly against it and none clearly for it: "does not hold"; cells
    clearly each way: "mixed". No cell left: "cannot tell".
    """
    if expected not in ("higher", "lower"):
        raise ValueError(f"expected must be 'higher' or 'lower', not {expected!r}")
    d = [x for x in directions if x != "collapsed"]
    if not d:
        return "cannot tell"
    against = "lower" if expected == "higher" else "higher"
    agree = d.count(expected)
    if against in d:
        return "mixed" if agree else "does not hold"
    if agree == len(d):
        return "holds"
    return "holds in part" if agree else "cannot tell"


def correlation_verdict(c: dict, expected_sign: int, alpha: float = 0.05, min_n: int = 5) -> str:
    """Verdict on a claimed correlation from :func:`polycompress.analysis.correlation`'s output:
    Spearman's coefficient has the expected sign with p < ``alpha``: "holds"; the opposite sign
    with p < ``alpha``: "does not hold"; otherwise, or with fewer than ``min_n`` points, "cannot tell"."""
    if c["n"] < min_n or not c["spearman_p"] < alpha:
        return "cannot tell"
    return "holds" if c["spearman"] * expected_sign > 0 else "does not hold"
