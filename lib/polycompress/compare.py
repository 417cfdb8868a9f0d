"""Paired comparisons of runs, with intervals over test sentences and seeds, and the verdict rule.

A *pair* is two runs scored on the same test sentences of one language and test set: a pruned
run against the dense run of the same setting, training languages and seed (:func:`dense_pairs`),
or a multilingual run against the monolingual run of the same language, method, scope, sparsity
and seed (:func:`setting_pairs`). :func:`paired_intervals` gives each pair ``F1(b) - F1(a)`` with
a paired bootstrap interval over test sentences (:mod:`polycompress.intervals`), and marks it
"collapsed" when either model scores below :data:`COLLAPSE_F1` on the regular test set.

A *cell* is one comparison over every seed: :func:`cell_intervals` averages the pairs' differences
over seeds and gives an interval that holds both sources of noise, the choice of test sentences
(a paired bootstrap, the same sentence draw for every seed, since every seed is scored on the same
sentences) and training (the variance of the seeds' differences), with a p-value from Student's t
and Satterthwaite's degrees of freedom. :func:`levels` places one model's F1 against a threshold
instead (the robustness headline), over seeds in the same way.

The verdict rule (:func:`claim_verdict`), the one place it is written: a claim's cells are
judged together, their p-values adjusted by Benjamini and Hochberg's procedure (scipy's
``false_discovery_control``): at most :data:`ALPHA` of the cells called clear are expected to be
false, and when no cell has an effect that is the chance of any false "clear" cell at all, so of
a verdict other than "cannot tell" (measured on simulated null studies in
``tests/test_compare.py``). A cell counts only with :data:`MIN_SEEDS` seeds whose differences all
share the sign of their mean.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from .config import fill_subnetworks
from .evaluation import sentence_counts
from .intervals import N_RESAMPLES, micro_f1, paired_difference

PAIR_KEYS = ["language", "test_set"]
INTERVAL_COLUMNS = ["f1_a", "f1_b", "difference", "low", "high", "n_sentences", "regular_a", "regular_b",
                    "collapsed", "verdict"]
VERDICTS = ("holds", "holds in part", "cannot tell", "mixed", "does not hold")
#: The collapse rule, the one place it is written: a model whose regular-test F1 on a language is
#: below this has not learned to tag that language (a tagger that predicts O everywhere scores
#: 0). A pair with such a model on either side is "collapsed": drawn in its own colour, and left
#: out of every verdict count and robustness ratio, with the number left out stated.
COLLAPSE_F1 = 0.2
#: the default study's quality floor (issue 13): a pruned model keeps at least this share of its
#: dense twin's regular-test F1 (the paper keeps 97% at 90% multilingual, 81% monolingual); a
#: sparsity whose models fall below it leaves the default grid (it stays in "extended")
QUALITY_FLOOR = 0.8
#: "near zero" in the paper's robustness headline (Sec. 4.3): above every one of its dense
#: models' perturbed F1 (Tables 4 and 8, 50 cells, at most 0.039), far below its pruned ones
NEAR_ZERO_F1 = 0.1
#: the false discovery rate of a claim's cells (Benjamini-Hochberg over them); with no effect
#: anywhere, the chance of a verdict other than "cannot tell"
ALPHA = 0.05
#: seeds a cell needs before it may count for or against a claim (the paper's three)
MIN_SEEDS = 3
#: a cell's direction, in :func:`directions`, when it may not count: the reason
TOO_FEW_SEEDS, SEEDS_DISAGREE = "too few seeds", "seeds disagree"
CELL_COLUMNS = ["seeds", "seed_differences", "f1_a", "f1_b", "difference", "low", "high", "p", "df",
                "seeds_agree", "test_var", "seed_var", "n_sentences", "regular_a", "regular_b", "collapsed_seeds", "collapsed", "verdict"]
#: a level's position against a threshold, read as a direction for :func:`verdict`, and back
POSITION_DIRECTION = {"below": "lower", "above": "higher", "unclear": "no clear difference", "collapsed": "collapsed"}
POSITION_NAME = {**{v: k for k, v in POSITION_DIRECTION.items()}, TOO_FEW_SEEDS: "unclear", SEEDS_DISAGREE: "unclear"}


def _scored(results: pd.DataFrame) -> pd.DataFrame:
    cols = ["run_id", "setting", "train_languages", "language", "method", "scope", "subnetworks", "target_sparsity",
            "seed", "test_set", "f1"]
    results = fill_subnetworks(results)  # a table from before non-shared runs: all shared
    if "embedding_pool" in results:
        cols.append("embedding_pool")
    scored = results.loc[results["f1"].notna(), cols]
    twice = scored.duplicated(["run_id", "language", "test_set"])
    if twice.any():
        raise ValueError(f"{int(twice.sum())} (run, language, test set) rows appear more than once in the results")
    return scored


def dense_pairs(results: pd.DataFrame) -> pd.DataFrame:
    """Every pruned (run, language, test set) with its dense twin: ``run_a`` dense, ``run_b`` pruned."""
    s = _scored(results)
    keys = ["setting", "train_languages", "seed", *PAIR_KEYS]
    dense = s[s["method"] == "dense"][keys + ["run_id"]].rename(columns={"run_id": "run_a"})
    pruned = s[s["method"] != "dense"].rename(columns={"run_id": "run_b"})
    out = pruned.merge(dense, on=keys, how="inner", validate="many_to_one")
    return out[["run_a", "run_b", "setting", "train_languages", "method", "scope", "subnetworks", "target_sparsity",
                "seed", *PAIR_KEYS]]


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


def pool_pairs(results: pd.DataFrame) -> pd.DataFrame:
    """Runs that prune the embeddings and differ only in the rows the embedding sparsity is
    taken over: ``run_a`` "trimmed" (the rows the corpora use), ``run_b`` "full" (the whole
    matrix, as in the paper); same setting, training languages, method, sparsity and seed.
    ``results`` must hold both pools (``analysis.load_results(embedding_pool=None)``)."""
    s = _scored(results)
    if "embedding_pool" not in s:
        raise ValueError("the results have no embedding_pool column (runs from before engine version 4)")
    keys = ["setting", "train_languages", "method", "subnetworks", "target_sparsity", "seed", *PAIR_KEYS]
    trimmed = s[s["embedding_pool"] == "trimmed"][keys + ["run_id"]].rename(columns={"run_id": "run_a"})
    full = s[s["embedding_pool"] == "full"][keys + ["run_id"]].rename(columns={"run_id": "run_b"})
    return trimmed.merge(full, on=keys, how="inner", validate="one_to_one")[["run_a", "run_b", *keys]]


def method_pairs(results: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Runs that differ only in their (shared-structure, encoder-scope) method: ``run_a`` method
    ``a``, ``run_b`` method ``b``, same setting, training languages, sparsity and seed."""
    s = _scored(results)
    # one subnetwork, the encoder's scope (grad may also prune the embeddings' rank: another model)
    s = s[(s["subnetworks"] == "shared") & (s["scope"] == "partial")]
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


def _cell_rng(seed: int, key) -> np.random.Generator:
    """The bootstrap generator of one cell: from ``seed`` and the cell's key alone, so a cell's
    interval does not depend on which cells come before it in a table."""
    return np.random.default_rng([seed, zlib.crc32(repr(key).encode())])


def _distinct_seeds(group: pd.DataFrame, key) -> None:
    """A cell's rows must be one per seed: a run counted twice would pass for another seed and
    shrink the interval (pseudo-replication)."""
    if "seed" in group and not group["seed"].is_unique:
        raise ValueError(f"cell {key}: {len(group)} rows for seeds {sorted(group['seed'])}: a seed appears twice "
                         f"(two models in one cell? keep one embedding_pool / exposure per table)")


def _regular_f1(counts: dict, run: str, language: str) -> float:
    """A run's micro F1 on a language's regular test set, from its per-sentence counts."""
    if (run, language, "regular") not in counts:
        raise KeyError(f"no regular-test predictions for {language} of run {run}: the collapse rule needs them")
    return float(micro_f1(*counts[(run, language, "regular")][0].T))


def levels(runs: pd.DataFrame, predictions: pd.DataFrame, threshold: float, n_resamples: int = N_RESAMPLES,
           seed: int = 0) -> pd.DataFrame:
    """One row per cell of ``runs`` (run_id, language, test_set, seed, ...; grouped over ``seed``):
    the mean F1 over seeds there, its interval for test sentences and training
    (:func:`_two_level`), ``difference`` = F1 - ``threshold`` with its ``p``, the mean regular-test
    F1, and ``position`` against ``threshold`` (uncorrected, for display): "above" / "below" when
    the interval lies wholly on one side and every seed is on that side, "unclear" otherwise, and
    "collapsed" when any seed's model is below :data:`COLLAPSE_F1` on the regular test set.
    :func:`claim_verdict` reads these cells like :func:`cell_intervals`'."""
    counts = counts_by_run(predictions[predictions["run_id"].isin(set(runs["run_id"]))])
    keys, groups = _cell_groups(runs, {"run_id", "seed", "f1", "low", "high", "position"})
    rows = []
    for key, group in groups:
        _distinct_seeds(group, key)
        rng = _cell_rng(seed, key)
        first = group.iloc[0]
        got = []
        for run in group["run_id"]:
            if (run, first["language"], first["test_set"]) not in counts:
                raise KeyError(f"no predictions for {first['language']}/{first['test_set']} of run {run}")
            got.append(counts[(run, first["language"], first["test_set"])])
            if got[-1][1] != got[0][1]:
                raise ValueError(f"the seeds of {first['language']}/{first['test_set']} were scored on different sentences")
        n = len(got[0][1])
        weights = _sentence_weights(n, n_resamples, rng)
        f1 = np.array([float(micro_f1(*c.T)) for c, _ in got])
        boot = np.stack([_f1_of(weights, c) for c, _ in got], axis=1) - threshold
        est = _two_level(boot, f1 - threshold, n)
        regular = np.array([_regular_f1(counts, run, first["language"]) for run in group["run_id"]])
        collapsed = bool((regular < COLLAPSE_F1).any())
        if collapsed:
            position = "collapsed"
        elif est["seeds_agree"] and (est["low"] > 0 or est["high"] < 0):
            position = "above" if est["difference"] > 0 else "below"
        else:
            position = "unclear"
        rows.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,))), "seeds": len(group),
                     "f1": float(f1.mean()), "low": est["low"] + threshold, "high": est["high"] + threshold,
                     "difference": est["difference"], "p": est["p"], "df": est["df"], "seeds_agree": est["seeds_agree"],
                     "test_var": est["test_var"], "seed_var": est["seed_var"], "n_sentences": n, "regular_f1": float(regular.mean()), "collapsed": collapsed, "position": position})
    return pd.DataFrame(rows, columns=[*keys, "seeds", "f1", "low", "high", "difference", "p", "df", "seeds_agree",
                                       "test_var", "seed_var", "n_sentences", "regular_f1", "collapsed", "position"])

def _two_level(boot: np.ndarray, observed: np.ndarray, n_sentences: int,
               confidence: float = 0.95) -> dict:
    """Mean over seeds of a per-seed statistic with an interval for test sentences and training.

    ``boot`` (n_resamples, seeds): the statistic of each seed on each paired sentence resample
    (the same resample across seeds); ``observed`` (seeds,): on the full test set. The variance
    of the seed mean is the bootstrap's (sentences) plus the seeds' sample variance over their
    number (training); the interval and two-sided p-value use Student's t with Satterthwaite's
    degrees of freedom (sentences - 1 for the first part, seeds - 1 for the second), so three
    seeds that scatter widely give few degrees of freedom and a wide interval.
    """
    seeds = len(observed)
    mean = float(observed.mean())
    test_var = float(np.var(boot.mean(axis=1), ddof=1))
    seed_var = float(np.var(observed, ddof=1)) if seeds > 1 else 0.0
    p, df = _t_test(mean, test_var, seed_var, seeds, n_sentences)
    half = float(stats.t.ppf(0.5 + confidence / 2, df) * np.sqrt(test_var + seed_var / seeds))
    agree = bool(mean != 0 and np.all(np.sign(observed) == np.sign(mean)))
    return {"difference": mean, "low": mean - half, "high": mean + half, "p": p, "df": df, "seeds_agree": agree,
            "test_var": test_var, "seed_var": seed_var}


def _t_test(mean: float, test_var: float, seed_var: float, seeds: int, n_sentences: int) -> tuple[float, float]:
    """(two-sided p, degrees of freedom) of a seed mean whose variance is ``test_var`` (sentences)
    plus ``seed_var`` / ``seeds`` (training), by Student's t with Satterthwaite's degrees of freedom."""
    v_seed = seed_var / seeds if seeds > 1 else 0.0
    v = test_var + v_seed
    parts = test_var ** 2 / max(n_sentences - 1, 1) + (v_seed ** 2 / (seeds - 1) if seeds > 1 else 0.0)
    df = v ** 2 / parts if parts > 0 else float("inf")
    if v == 0:
        return (1.0 if mean == 0 else 0.0), df
    return float(2 * stats.t.sf(abs(mean) / np.sqrt(v), df)), df


def _sentence_weights(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, n) counts of each sentence in each bootstrap resample (a multinomial draw)."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples).astype(float)


def _f1_of(weights: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Micro F1 of each resample: ``weights`` (B, n) times per-sentence counts (n, 3)."""
    c, p, g = (weights @ counts).T
    return np.divide(2.0 * c, p + g, out=np.zeros_like(c), where=(p + g) > 0)


def _cell_groups(frame: pd.DataFrame, drop: set[str]):
    keys = [c for c in frame.columns if c not in drop]
    return keys, frame.groupby(keys, sort=False, dropna=False) if keys else [((), frame)]


def difference_over_seeds(a: np.ndarray, b: np.ndarray, n_resamples: int = N_RESAMPLES,
                          rng: np.random.Generator | None = None, regular_a: np.ndarray | None = None,
                          regular_b: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """``a``, ``b`` (seeds, sentences, 3): per-sentence counts of the two models of each seed on
    the same sentences. Returns the statistics (seeds, 2) and :func:`_two_level`'s estimate of
    the mean over seeds of ``stat(b) - stat(a)``, where stat is F1, or, given each model's counts
    on the regular test set (``regular_a``, ``regular_b``, same shapes, sentence i of the perturbed
    set made from regular sentence i), the robustness ratio F1(perturbed) / F1(regular) with both
    sets resampled by the same sentence draw."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected two (seeds, n, 3) count arrays, got {a.shape} and {b.shape}")
    ratio = regular_a is not None
    if ratio and (np.shape(regular_a) != a.shape or np.shape(regular_b) != a.shape):
        raise ValueError(f"regular counts must match the perturbed ones, {a.shape}: got "
                         f"{np.shape(regular_a)} and {np.shape(regular_b)}")
    rng = rng or np.random.default_rng(0)
    weights = _sentence_weights(a.shape[1], n_resamples, rng)

    def stat(x: np.ndarray, reg: np.ndarray | None, w: np.ndarray | None) -> np.ndarray:
        f1 = _f1_of(w, x) if w is not None else micro_f1(*x.T)
        if reg is None:
            return f1
        base = _f1_of(w, reg) if w is not None else micro_f1(*reg.T)
        return np.divide(f1, base, out=np.full(np.shape(f1), np.nan), where=base > 0)

    seeds = range(len(a))
    ra = [None] * len(a) if not ratio else np.asarray(regular_a, dtype=float)
    rb = [None] * len(a) if not ratio else np.asarray(regular_b, dtype=float)
    values = np.array([[float(stat(a[s], ra[s], None)), float(stat(b[s], rb[s], None))] for s in seeds])
    boot = np.stack([stat(b[s], rb[s], weights) - stat(a[s], ra[s], weights) for s in seeds], axis=1)
    boot = boot[np.isfinite(boot).all(axis=1)]  # a resample with no regular mention found has no ratio
    return values, _two_level(boot, values[:, 1] - values[:, 0], a.shape[1])


def cell_intervals(pairs: pd.DataFrame, predictions: pd.DataFrame, n_resamples: int = N_RESAMPLES, seed: int = 0,
                   collapse_f1: float = COLLAPSE_F1, ratio: bool = False) -> pd.DataFrame:
    """One row per cell: ``pairs`` grouped over ``seed`` (every other column but the run ids is a
    key), with the mean over seeds of ``F1(b) - F1(a)`` and its interval (see :func:`_two_level`),
    ``p``, ``seeds``, the per-seed differences, ``seeds_agree``, the mean regular-test F1 of each
    side, and ``collapsed`` when any seed's model on either side is below ``collapse_f1`` there
    (``collapsed_seeds`` counts them). ``verdict`` is the cell's own direction at 95%, uncorrected
    (what a chart colours by): "collapsed", "seeds disagree", "higher", "lower" or "no clear
    difference"; the scorecard's claims use :func:`claim_verdict` instead.

    ``ratio``: compare robustness as the paper defines it (Sec. 4.3), F1 on a perturbed set over
    F1 on the regular set, each model's own, resampled together (``f1_a``/``f1_b`` then hold the
    ratios); only pairs on perturbed sets are allowed.
    """
    if ratio and (pairs["test_set"] == "regular").any():
        raise ValueError("a robustness ratio compares a perturbed test set with the regular one: "
                         "pairs on the regular set have none")
    counts = counts_by_run(predictions[predictions["run_id"].isin(set(pairs["run_a"]) | set(pairs["run_b"]))])
    keys, groups = _cell_groups(pairs, {"run_a", "run_b", "seed"})
    rows = []
    for key, group in groups:
        _distinct_seeds(group, key)
        rng = _cell_rng(seed, key)
        first = group.iloc[0]
        sides, regular = [], []
        for pair in group.itertuples(index=False):
            got = [counts.get((run, first["language"], first["test_set"])) for run in (pair.run_a, pair.run_b)]
            if got[0] is None or got[1] is None:
                missing = pair.run_a if got[0] is None else pair.run_b
                raise KeyError(f"no predictions for {first['language']}/{first['test_set']} of run {missing}")
            if got[0][1] != got[1][1] or (sides and got[0][1] != sides[0][0][1]):
                raise ValueError(f"runs {pair.run_a} and {pair.run_b} were scored on different "
                                 f"{first['language']}/{first['test_set']} sentences from each other or from "
                                 f"the other seeds of their cell")
            sides.append(got)
            regular.append([_regular_f1(counts, run, first["language"]) for run in (pair.run_a, pair.run_b)])
        n = len(sides[0][0][1])
        base = {}
        if ratio:
            reg = [[counts[(run, first["language"], "regular")] for run in (pair.run_a, pair.run_b)]
                   for pair in group.itertuples(index=False)]
            if any(len(r[0][1]) != n or len(r[1][1]) != n for r in reg):
                raise ValueError(f"{first['language']}/{first['test_set']}: the perturbed set does not have one "
                                 f"sentence per regular sentence, so the two cannot be resampled together")
            base = {"regular_a": np.stack([r[0][0] for r in reg]), "regular_b": np.stack([r[1][0] for r in reg])}
        f1, est = difference_over_seeds(np.stack([a[0] for a, _ in sides]), np.stack([b[0] for _, b in sides]),
                                        n_resamples, rng, **base)
        regular = np.array(regular)
        collapsed_seeds = int((regular.min(axis=1) < collapse_f1).sum())
        if collapsed_seeds:
            direction = "collapsed"
        elif est["low"] > 0 or est["high"] < 0:
            direction = ("higher" if est["difference"] > 0 else "lower") if est["seeds_agree"] else SEEDS_DISAGREE
        else:
            direction = "no clear difference"
        rows.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,))), "seeds": len(group),
                     "seed_differences": ", ".join(f"{d:+.3f}" for d in f1[:, 1] - f1[:, 0]),
                     "f1_a": float(f1[:, 0].mean()), "f1_b": float(f1[:, 1].mean()), **est, "n_sentences": n,
                     "regular_a": float(regular[:, 0].mean()), "regular_b": float(regular[:, 1].mean()),
                     "collapsed_seeds": collapsed_seeds, "collapsed": collapsed_seeds > 0, "verdict": direction})
    return pd.DataFrame(rows, columns=[*keys, *CELL_COLUMNS])


def directions(cells: pd.DataFrame, alpha: float = ALPHA, min_seeds: int = MIN_SEEDS) -> pd.Series:
    """Each cell's direction for a claim, the cells of ``cells`` judged as one family.

    "collapsed" (a model below the floor), "too few seeds" (fewer than ``min_seeds``) and the
    rest: Benjamini-Hochberg-adjusted p below ``alpha`` and every seed on the side of the mean: "higher" /
    "lower"; adjusted p below ``alpha`` but a seed on the other side: "seeds disagree"; otherwise
    "no clear difference". ``cells`` needs ``difference``, ``p``, ``seeds``, ``seeds_agree`` and
    ``collapsed`` (:func:`cell_intervals`, :func:`levels`).
    """
    out = pd.Series("no clear difference", index=cells.index, dtype=object)
    out[cells["collapsed"].astype(bool)] = "collapsed"
    few = ~cells["collapsed"].astype(bool) & (cells["seeds"] < min_seeds)
    out[few] = TOO_FEW_SEEDS
    family = cells.index[(out == "no clear difference").to_numpy()]
    if len(family):
        f = cells.loc[family]
        # three seeds estimate a cell's training noise with two degrees of freedom: by chance they
        # can agree closely and make a null cell look certain. A cell's seed variance is taken as
        # at least the median of its family's (the claim's cells), a conservative form of the
        # pooled variance of moderated t-tests; the simulation in tests/test_compare.py measures
        # the false-positive rate this gives.
        floor = float(np.nanmedian(f["seed_var"])) if "seed_var" in f else 0.0
        p = [(_t_test(r.difference, r.test_var, max(r.seed_var, floor), int(r.seeds), int(r.n_sentences))[0]
              if "seed_var" in f else r.p) for r in f.itertuples(index=False)]
        # a cell without a p-value (no finite resample: a ratio over a regular set with nothing
        # found) can show nothing: p = 1, not an error for the whole claim
        p = np.nan_to_num(np.asarray(p, dtype=float), nan=1.0)
        adjusted = stats.false_discovery_control(p, method="bh")
        for idx, clear in zip(family, adjusted < alpha):
            if clear:
                row = cells.loc[idx]
                out[idx] = ("higher" if row["difference"] > 0 else "lower") if row["seeds_agree"] else SEEDS_DISAGREE
    return out


def claim_verdict(cells: pd.DataFrame, expected: str, alpha: float = ALPHA, min_seeds: int = MIN_SEEDS) -> str:
    """The scorecard's verdict on one claim's cells: :func:`verdict` over :func:`directions`."""
    return verdict(directions(cells, alpha, min_seeds) if len(cells) else [], expected)


def seed_spread(intervals: pd.DataFrame, keys: Iterable[str]) -> pd.DataFrame:
    """Per cell of ``keys`` (without ``seed``): seeds, mean difference and its standard
    deviation across seeds (NaN with one seed: the spread is then unknown, not zero)."""
    keys = [k for k in keys if k != "seed"]
    g = intervals.groupby(keys)["difference"]
    return g.agg(seeds="count", mean_difference="mean", seed_sd="std").reset_index()


def verdict(directions: Iterable[str], expected: str) -> str:
    """The scorecard's rule over the paired intervals of one claim's cells.

    ``directions`` are the cells' directions from :func:`directions` ("higher", "lower", "no
    clear difference", "seeds disagree", "too few seeds", "collapsed"; the last three count as
    unclear except "collapsed", left out); ``expected`` is the direction the claim predicts.
    Collapsed cells are left out (the caller states how many). Every other cell clearly in the
    expected direction: "holds"; some, the rest unclear: "holds in part"; none clear:
    "cannot tell"; cells clearly against it and none clearly for it: "does not hold"; cells
    clearly each way: "mixed". No cell left: "cannot tell".
    """
    if expected not in ("higher", "lower"):
        raise ValueError(f"expected must be 'higher' or 'lower', not {expected!r}")
    d = [x for x in directions if x != "collapsed"]  # too few seeds / seeds disagree: unclear
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


def seed_cells(frame: pd.DataFrame, keys: list[str], a: str, b: str, label: str = "model",
               collapse_f1: float = COLLAPSE_F1, collapsed_when: str = "either") -> pd.DataFrame:
    """Cells of a comparison whose models keep no per-sentence predictions (the post-training
    copies of a run: quantized, pruned after training), so the interval is over seeds alone.

    ``frame`` has one F1 per ``keys`` + ``seed`` + ``label`` (``label`` names the model: ``a`` and
    ``b`` are two of its values). Per cell of ``keys``: the seeds' ``F1(b) - F1(a)``, their mean, a
    Student-t interval over seeds (seeds - 1 degrees of freedom; NaN below 2 seeds), the p of a
    one-sample t-test and whether every seed shares the mean's sign, over the seeds where neither
    model collapsed (F1 below ``collapse_f1``; ``collapsed_when="both"``: where not both did, for a
    claim that one model survives what collapses the other, which the usual rule would leave with
    nothing to judge). ``collapsed_seeds`` counts the seeds left out; a cell with none left is
    ``collapsed``, one with fewer than :data:`MIN_SEEDS` counts as too few seeds. The columns :func:`directions` and
    :func:`claim_verdict` read, so these cells take the book's rule (Benjamini-Hochberg over a
    claim's cells, :data:`MIN_SEEDS` agreeing seeds).
    """
    if collapsed_when not in ("either", "both"):
        raise ValueError(f"collapsed_when must be 'either' or 'both', not {collapsed_when!r}")
    worst = np.maximum if collapsed_when == "both" else np.minimum
    chosen = frame[frame[label].isin([a, b])]
    twice = chosen.duplicated([*keys, "seed", label], keep=False)
    if twice.any():  # pivot_table would average them: two models passing for one (pseudo-replication)
        example = chosen[twice].iloc[0]
        raise ValueError(f"{int(twice.sum())} rows share their {', '.join([*keys, 'seed', label])} with another row "
                         f"(e.g. {', '.join(f'{k}={example[k]}' for k in [*keys, 'seed', label])}): one F1 per model "
                         "and seed is needed; keep one scope / embedding pool / exposure per table")
    wide = chosen.pivot_table(index=[*keys, "seed"], columns=label, values="f1")
    wide = wide.dropna(subset=[c for c in (a, b) if c in wide])
    rows = []
    if a not in wide or b not in wide:
        return pd.DataFrame(columns=[*keys, "seeds", "collapsed_seeds", "f1_a", "f1_b", "difference", "low", "high",
                                     "p", "seeds_agree", "collapsed"])
    for cell, part in wide.groupby(level=keys, sort=True):
        # a seed whose model did not learn tells nothing about the comparison: left out, counted
        dead = worst(part[a], part[b]) < collapse_f1
        kept = part[~dead]
        key = dict(zip(keys, cell if isinstance(cell, tuple) else (cell,)))
        if kept.empty:
            rows.append({**key, "seeds": 0, "collapsed_seeds": int(dead.sum()), "f1_a": float(part[a].mean()),
                         "f1_b": float(part[b].mean()), "difference": np.nan, "low": np.nan, "high": np.nan,
                         "p": np.nan, "seeds_agree": False, "collapsed": True})
            continue
        part = kept
        d = (part[b] - part[a]).to_numpy(dtype=float)
        n, mean = len(d), float(d.mean())
        sd = float(d.std(ddof=1)) if n > 1 else float("nan")
        if n > 1 and sd > 0:
            half = float(stats.t.ppf(0.975, n - 1)) * sd / np.sqrt(n)
            p = float(2 * stats.t.sf(abs(mean) / (sd / np.sqrt(n)), n - 1))
        elif n > 1:  # every seed the same difference: exact, no spread to test against
            half, p = 0.0, (0.0 if mean else 1.0)
        else:
            half, p = float("nan"), float("nan")
        f1_a, f1_b = float(part[a].mean()), float(part[b].mean())
        rows.append({**key, "seeds": n, "collapsed_seeds": int(dead.sum()), "f1_a": f1_a,
                     "f1_b": f1_b, "difference": mean, "low": mean - half, "high": mean + half, "p": p,
                     "seeds_agree": bool((np.sign(d) == np.sign(mean)).all()) and mean != 0,
                     "collapsed": False})
    return pd.DataFrame(rows)


def equivalence_verdict(cells: pd.DataFrame, margin: float, min_seeds: int = MIN_SEEDS) -> str:
    """Does ``b`` match ``a`` within ``margin`` F1 in every cell (:func:`seed_cells`)? "holds": every
    counted cell's interval lies inside [-margin, +margin]; "does not hold": some cell's interval
    lies wholly outside it; otherwise "cannot tell". Collapsed cells and cells with fewer than
    ``min_seeds`` seeds count as unclear (a match cannot rest on them)."""
    if not len(cells):
        return "cannot tell"
    usable = (~cells["collapsed"].astype(bool)) & (cells["seeds"] >= min_seeds)
    outside = usable & ((cells["low"] > margin) | (cells["high"] < -margin))
    inside = usable & (cells["low"] >= -margin) & (cells["high"] <= margin)
    if outside.any():
        return "does not hold"
    return "holds" if inside.all() else "cannot tell"
