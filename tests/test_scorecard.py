"""The scorecard's effects and pairings (the whole table is built in the book test)."""

import numpy as np
import pandas as pd
import pytest

from polycompress import compare, scorecard


def test_mean_effect_has_an_interval_around_the_mean():
    e = scorecard.mean_effect(pd.Series([0.1, 0.2, 0.3, 0.2, 0.15]), "pruned − dense F1")
    assert e.value == pytest.approx(0.19) and e.low <= e.value <= e.high and e.n == 5
    assert "[" in e.text() and "n = 5" in e.text()
    one = scorecard.mean_effect(pd.Series([0.4]), "x")
    assert one.value == pytest.approx(0.4) and np.isnan(one.low)
    assert scorecard.mean_effect(pd.Series([], dtype=float), "x").text().startswith("no estimate")


def test_spearman_effect_needs_five_points():
    x = pd.Series([1, 2, 3, 4, 5, 6.0])
    y = pd.Series([2, 1, 4, 3, 6, 5.0])
    e = scorecard.spearman_effect(x, y, "Spearman")
    assert e.value == pytest.approx(0.8286, abs=1e-3) and -1 <= e.low <= e.high <= 1
    assert np.isnan(scorecard.spearman_effect(x[:4], y[:4], "Spearman").value)


def test_method_pairs_match_runs_that_differ_only_in_method():
    base = {"setting": "multilingual", "train_languages": "sw,yo", "language": "yo", "scope": "partial",
            "subnetworks": "shared", "seed": 0, "test_set": "regular", "f1": 0.5}
    results = pd.DataFrame([
        {**base, "run_id": "g50", "method": "grad", "target_sparsity": 0.5},
        {**base, "run_id": "l50", "method": "l0", "target_sparsity": 0.5},
        {**base, "run_id": "l90", "method": "l0", "target_sparsity": 0.9},
        {**base, "run_id": "g50-own", "method": "grad", "target_sparsity": 0.5, "subnetworks": "non_shared"},
    ])
    pairs = compare.method_pairs(results, "l0", "grad")
    assert pairs[["run_a", "run_b"]].values.tolist() == [["l50", "g50"]]


def test_describe_counts_cells_by_the_claims_rule():
    """The evidence column counts what the verdict reads: cells adjusted together, seeds needed."""
    base = {"seeds": 3, "seeds_agree": True, "collapsed": False, "test_var": 1e-4, "seed_var": 1e-4, "n_sentences": 200}
    cells = pd.DataFrame([{**base, "difference": -0.2, "p": 1e-6}, {**base, "difference": 0.01, "p": 0.6},
                          {**base, "difference": -0.05, "p": 1e-6, "seeds_agree": False},
                          {**base, "difference": -0.3, "p": 1e-6, "seeds": 1},
                          {**base, "difference": -0.5, "p": 1e-9, "collapsed": True}])
    text = scorecard.describe(cells)
    assert text.startswith("5 cells (1/3 seeds each): 0 clearly higher, 1 clearly lower, 1 within noise")
    assert "1 where the seeds disagree" in text and "1 with fewer than 3 seeds" in text and "1 collapsed" in text
    assert compare.claim_verdict(cells, "lower") == "holds in part"


def test_collapsed_models_lists_each_model_seed_and_language_below_the_floor():
    rows = [{"run_id": f"r{s}", "setting": "monolingual", "language": "en", "method": "imp", "scope": "partial",
             "target_sparsity": 0.9, "subnetworks": "shared", "seed": s, "test_set": "regular", "f1": f1}
            for s, f1 in enumerate([0.0, 0.5, 0.1])]
    dead = scorecard.collapsed_models(pd.DataFrame(rows))
    assert dead["seed"].tolist() == [0, 2] and (dead["regular F1"] < compare.COLLAPSE_F1).all()
