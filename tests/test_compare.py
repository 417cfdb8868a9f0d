"""Paired bootstrap intervals, run pairing and the scorecard's verdict rule."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from seqeval.metrics import f1_score

from polycompress import compare
from polycompress.evaluation import sentence_counts
from polycompress.intervals import micro_f1, paired_difference

GOLD = [["B-PER", "I-PER", "O"], ["O", "B-LOC"], ["B-ORG", "O", "O"], ["O", "O", "O"]]
WORSE = [["B-PER", "O", "O"], ["O", "B-LOC"], ["I-ORG", "O", "B-LOC"], ["O", "O", "O"]]


def test_sentence_counts_sum_to_seqeval_micro_f1(mirror):
    from polycompress.conll import read_conll
    from polycompress.tags import COMMON_TYPES

    sentences, _ = read_conll(mirror / "panx" / "sw" / "test.tsv", separator="\t", types=COMMON_TYPES)
    gold = [list(s.tags) for s in sentences]
    # a noisy prediction: a fifth of the tags replaced, some by an I- with no B- before it
    rng = np.random.default_rng(0)
    pred = [[t if rng.random() > 0.2 else rng.choice(["O", "B-LOC", "I-PER"]) for t in g] for g in gold]
    counts = sentence_counts(gold, pred)
    assert counts.shape == (len(gold), 3)
    assert micro_f1(*counts.T) == pytest.approx(f1_score(gold, pred))


def test_paired_interval_is_zero_for_identical_models_and_excludes_zero_for_a_clear_loss():
    a = sentence_counts(GOLD * 50, GOLD * 50)
    same = paired_difference(a, a)
    assert same.difference == same.low == same.high == 0 and same.verdict == "no clear difference"
    worse = paired_difference(a, sentence_counts(GOLD * 50, WORSE * 50))
    assert worse.high < 0 and worse.verdict == "lower"
    assert worse.low <= worse.difference <= worse.high
    # reversed roles, same sentences: the mirror image
    better = paired_difference(sentence_counts(GOLD * 50, WORSE * 50), a)
    assert better.difference == pytest.approx(-worse.difference) and better.verdict == "higher"


def test_a_tiny_difference_on_few_sentences_is_not_called():
    a = sentence_counts(GOLD * 3, GOLD * 3)
    b = sentence_counts(GOLD * 3, [WORSE[0]] + (GOLD * 3)[1:])  # one mention missed in 12 sentences
    d = paired_difference(a, b)
    assert d.difference < 0 and d.verdict == "no clear difference"


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="same sentences"):
        paired_difference(np.zeros((3, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="sentence 0"):
        sentence_counts([["O", "O"]], [["O"]])


def _results_and_predictions(pruned=WORSE):
    results, predictions = [], []
    runs = [("d", "dense", "none", 0.0, GOLD), ("p", "imp", "partial", 0.5, pruned)]
    for run_id, method, scope, sp, pred in runs:
        results.append({"run_id": run_id, "setting": "multilingual", "train_languages": "yo,sw", "language": "yo",
                        "method": method, "scope": scope, "target_sparsity": sp, "seed": 0,
                        "test_set": "regular", "f1": f1_score(GOLD, pred)})
        predictions += [{"run_id": run_id, "language": "yo", "test_set": "regular", "sentence": k, "gold": g, "pred": p}
                        for k, (g, p) in enumerate(zip(GOLD * 20, pred * 20))]
    return pd.DataFrame(results), pd.DataFrame(predictions)


def test_pruned_runs_are_paired_with_their_dense_twin_and_scored():
    results, predictions = _results_and_predictions()
    pairs = compare.dense_pairs(results)
    assert pairs[["run_a", "run_b"]].values.tolist() == [["d", "p"]]
    out = compare.paired_intervals(pairs, predictions, n_resamples=500)
    row = out.iloc[0]
    assert row["f1_a"] == pytest.approx(1.0) and row["f1_b"] == pytest.approx(results["f1"].iloc[1])
    assert row["verdict"] == "lower"


def test_a_pair_with_a_model_below_the_collapse_floor_is_collapsed():
    """A pruned model that tags nothing (regular F1 0) is clearly "lower" than dense by its
    interval, but the collapse rule marks it, and the verdict rule leaves it out."""
    nothing = [["O"] * len(g) for g in GOLD]
    results, predictions = _results_and_predictions(pruned=nothing)
    out = compare.paired_intervals(compare.dense_pairs(results), predictions, n_resamples=200).iloc[0]
    assert out["high"] < 0  # the interval alone would call it a loss
    assert out["regular_b"] == 0.0 and out["regular_a"] == pytest.approx(1.0)
    assert out["collapsed"] and out["verdict"] == "collapsed"
    assert compare.verdict([out["verdict"]], "lower") == "cannot tell"
    # the floor is a parameter: at 0 nothing collapses and the loss is called
    kept = compare.paired_intervals(compare.dense_pairs(results), predictions, n_resamples=200,
                                    collapse_f1=0.0).iloc[0]
    assert kept["verdict"] == "lower" and not kept["collapsed"]


def test_unpaired_sentences_are_refused():
    results, predictions = _results_and_predictions()
    shuffled = predictions.copy()
    # sentence 0 of the pruned run carries another sentence's gold tags (same length)
    first = shuffled.index[(shuffled["run_id"] == "p") & (shuffled["sentence"] == 0)][0]
    shuffled.at[first, "gold"] = ["O", "O", "O"]
    with pytest.raises(ValueError, match="different"):
        compare.paired_intervals(compare.dense_pairs(results), shuffled, n_resamples=100)


def test_seed_spread_is_unknown_with_one_seed():
    df = pd.DataFrame({"language": ["yo", "yo", "sw"], "seed": [0, 1, 0], "difference": [0.1, 0.3, 0.2]})
    spread = compare.seed_spread(df, ["language", "seed"]).set_index("language")
    assert spread.loc["yo", "seed_sd"] == pytest.approx(np.std([0.1, 0.3], ddof=1))
    assert np.isnan(spread.loc["sw", "seed_sd"]) and spread.loc["sw", "seeds"] == 1


@pytest.mark.parametrize("cells, expected", [
    (["higher", "higher"], "holds"),
    (["higher", "no clear difference"], "holds in part"),
    (["no clear difference"], "cannot tell"),
    ([], "cannot tell"),
    (["lower", "no clear difference"], "does not hold"),
    (["lower", "higher"], "mixed"),
    (["collapsed", "higher"], "holds"),  # collapsed cells are left out, not counted as unclear
    (["collapsed", "collapsed"], "cannot tell"),
])
def test_verdict_rule(cells, expected):
    assert compare.verdict(cells, "higher") == expected
    assert expected in compare.VERDICTS


def test_setting_and_scope_pairs_match_every_other_key():
    base = {"train_languages": "yo", "language": "yo", "method": "imp", "target_sparsity": 0.5, "seed": 0,
            "test_set": "regular", "f1": 0.5}
    results = pd.DataFrame([
        {**base, "run_id": "mono-part", "setting": "monolingual", "scope": "partial"},
        {**base, "run_id": "mono-emb", "setting": "monolingual", "scope": "incl_embeddings"},
        {**base, "run_id": "multi-part", "setting": "multilingual", "train_languages": "yo,sw", "scope": "partial"},
        {**base, "run_id": "multi-part-90", "setting": "multilingual", "train_languages": "yo,sw", "scope": "partial",
         "target_sparsity": 0.9},
    ])
    assert compare.setting_pairs(results)[["run_a", "run_b"]].values.tolist() == [["mono-part", "multi-part"]]
    assert compare.scope_pairs(results)[["run_a", "run_b"]].values.tolist() == [["mono-part", "mono-emb"]]


def test_correlation_verdict_needs_points_and_significance():
    strong = {"n": 39, "spearman": 0.4, "spearman_p": 0.01}
    assert compare.correlation_verdict(strong, +1) == "holds"
    assert compare.correlation_verdict(strong, -1) == "does not hold"
    assert compare.correlation_verdict({**strong, "spearman_p": 0.2}, +1) == "cannot tell"
    assert compare.correlation_verdict({"n": 3, "spearman": 1.0, "spearman_p": 0.0}, +1) == "cannot tell"
    assert compare.correlation_verdict({"n": 8, "spearman": float("nan"), "spearman_p": float("nan")}, +1) == "cannot tell"


def test_shared_and_non_shared_runs_pair_with_each_other_and_each_with_dense():
    base = {"setting": "multilingual", "train_languages": "yo,sw", "language": "yo", "scope": "partial",
            "target_sparsity": 0.5, "seed": 0, "test_set": "regular", "f1": 0.5}
    results = pd.DataFrame([
        {**base, "run_id": "d", "method": "dense", "scope": "none", "target_sparsity": 0.0, "subnetworks": "shared"},
        {**base, "run_id": "s", "method": "grad", "subnetworks": "shared"},
        {**base, "run_id": "n", "method": "grad", "subnetworks": "non_shared"},
        {**base, "run_id": "i", "method": "imp", "subnetworks": "shared"},
    ])
    assert compare.subnetwork_pairs(results)[["run_a", "run_b"]].values.tolist() == [["s", "n"]]
    dense = compare.dense_pairs(results)
    assert sorted(dense["run_b"]) == ["i", "n", "s"] and set(dense["run_a"]) == {"d"}
    # a table from before the column: every run shared, nothing to pair
    assert compare.subnetwork_pairs(results.drop(columns="subnetworks").iloc[[0, 1, 3]]).empty


def test_levels_place_a_model_against_a_threshold_with_an_interval():
    results, predictions = _results_and_predictions()
    runs = results[["run_id", "method", "language", "test_set"]]
    out = compare.levels(runs, predictions, threshold=0.1, n_resamples=300).set_index("method")
    assert out.loc["dense", "f1"] == pytest.approx(1.0) and out.loc["dense", "position"] == "above"
    assert out.loc["imp", "low"] <= out.loc["imp", "f1"] <= out.loc["imp", "high"]
    assert compare.levels(runs, predictions, threshold=1.5, n_resamples=300)["position"].tolist() == ["below", "below"]
    nothing = [["O"] * len(g) for g in GOLD]
    results, predictions = _results_and_predictions(pruned=nothing)
    out = compare.levels(results[["run_id", "method", "language", "test_set"]], predictions, threshold=0.1,
                         n_resamples=300)
    assert out.set_index("method").loc["imp", "position"] == "collapsed"


def _seeded(differences: dict[int, list], n: int = 30, dense_misses: dict[int, list] | None = None):
    """Dense and pruned runs of seeds 0.. on one language: the pruned run of seed s misses the
    mentions of the sentences ``differences[s]`` (indices into n sentences), its dense twin those
    of ``dense_misses[s]``."""
    gold = (GOLD * n)[:n]
    results, predictions = [], []
    for s, missed in differences.items():
        pruned = [[("O" if k in missed else t) for t in g] for k, g in enumerate(gold)]
        dense = [[("O" if k in (dense_misses or {}).get(s, []) else t) for t in g] for k, g in enumerate(gold)]
        for run_id, method, scope, sp, pred in ((f"d{s}", "dense", "none", 0.0, dense),
                                                (f"p{s}", "imp", "partial", 0.5, pruned)):
            results.append({"run_id": run_id, "setting": "multilingual", "train_languages": "yo,sw", "language": "yo",
                            "method": method, "scope": scope, "target_sparsity": sp, "seed": s, "test_set": "regular",
                            "f1": f1_score(gold, pred)})
            predictions += [{"run_id": run_id, "language": "yo", "test_set": "regular", "sentence": k, "gold": g,
                             "pred": q} for k, (g, q) in enumerate(zip(gold, pred))]
    return pd.DataFrame(results), pd.DataFrame(predictions)


def test_a_cell_averages_its_seeds_and_its_interval_holds_their_spread():
    steady = {s: list(range(0, 12, 1)) for s in range(3)}  # every seed loses the same mentions
    results, predictions = _seeded(steady)
    cell = compare.cell_intervals(compare.dense_pairs(results), predictions, n_resamples=400).iloc[0]
    assert cell["seeds"] == 3 and cell["seeds_agree"] and cell["seed_var"] == 0
    assert cell["difference"] < 0 and cell["high"] < 0 and cell["verdict"] == "lower"
    # the same mean loss, but the seeds scatter: training noise widens the interval
    scatter = {0: list(range(0, 2)), 1: list(range(0, 12)), 2: list(range(0, 22))}
    results, predictions = _seeded(scatter)
    wide = compare.cell_intervals(compare.dense_pairs(results), predictions, n_resamples=400).iloc[0]
    assert wide["seed_var"] > 0 and wide["high"] - wide["low"] > cell["high"] - cell["low"]
    assert len(wide["seed_differences"].split(",")) == 3
    # a seed on the other side of the mean: never a clear cell
    results, predictions = _seeded({0: [], 1: list(range(14)), 2: list(range(14))}, dense_misses={0: [0, 1, 2]})
    odd = compare.cell_intervals(compare.dense_pairs(results), predictions, n_resamples=400)
    assert not odd.iloc[0]["seeds_agree"]
    assert compare.directions(odd).iloc[0] in ("no clear difference", compare.SEEDS_DISAGREE)


def test_a_cell_with_fewer_seeds_than_the_rule_needs_never_counts():
    results, predictions = _seeded({0: list(range(12))})
    cells = compare.cell_intervals(compare.dense_pairs(results), predictions, n_resamples=300)
    assert cells.iloc[0]["verdict"] == "lower"  # its own interval is clear: sentences alone
    assert compare.directions(cells).tolist() == [compare.TOO_FEW_SEEDS]
    assert compare.claim_verdict(cells, "lower") == "cannot tell"
    assert compare.claim_verdict(cells, "lower", min_seeds=1) == "holds"


def _simulated_study(rng, cells: int, effect: float, sd_range: tuple[float, float], seeds: int = 3, n: int = 200):
    """One study of ``cells`` paired comparisons on simulated NER counts: per sentence, gold
    mentions, a difficulty every model shares, and per model a skill = the cell's skill + training
    noise (sd drawn per cell from ``sd_range``) + ``effect`` for system b."""
    rows = []
    for _ in range(cells):
        gold = rng.poisson(1.2, size=n) + (rng.random(n) < 0.3)
        hard = rng.beta(4, 1.5, size=n)
        skill = (rng.uniform(0.4, 0.9) + rng.normal(0, rng.uniform(*sd_range), size=(2, seeds, 1))
                 + np.array([0.0, effect])[:, None, None])
        correct = rng.binomial(gold, np.clip(np.clip(skill, 0.01, 0.99) * hard / hard.mean(), 0, 1))
        counts = np.stack([correct, correct + rng.poisson(0.15 * gold + 0.05, size=correct.shape),
                           np.broadcast_to(gold, correct.shape)], axis=-1)
        _, est = compare.difference_over_seeds(counts[0], counts[1], 200, rng)
        rows.append({**est, "seeds": seeds, "n_sentences": n, "collapsed": False})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("sd_range", [(0.0, 0.01), (0.0, 0.08), (0.06, 0.1)], ids=["quiet", "mixed", "noisy"])
def test_the_verdict_rule_rarely_calls_a_claim_when_both_systems_are_equal(sd_range):
    """False-positive rate of :func:`compare.claim_verdict` on simulated null studies (no cell has
    an effect; 20 cells of 3 seeds, 200 sentences, training noise as given): a verdict other than
    "cannot tell" in at most 5% of 150 studies. (Measured with this seed: 0, 2 and 0 false verdicts of 150, at most 1.3%.)"""
    rng = np.random.default_rng(7)
    verdicts = [compare.claim_verdict(_simulated_study(rng, 20, 0.0, sd_range), "higher") for _ in range(150)]
    assert np.mean([v != "cannot tell" for v in verdicts]) <= 0.05


def test_the_verdict_rule_finds_a_real_effect():
    """The same simulation with a 0.15 F1 gain in every cell: the rule calls it (so the null
    test above is not passed by a rule that never calls anything)."""
    rng = np.random.default_rng(8)
    verdicts = [compare.claim_verdict(_simulated_study(rng, 20, 0.15, (0.0, 0.03)), "higher") for _ in range(20)]
    assert np.mean([v in ("holds", "holds in part") for v in verdicts]) >= 0.9
    assert "does not hold" not in verdicts and "mixed" not in verdicts


def test_robustness_as_a_ratio_does_not_punish_a_model_that_is_worse_everywhere():
    """The paper's robustness is perturbed over regular F1. A pruned model that misses the same
    share of mentions on both sets is lower on the perturbed set in absolute F1, but exactly as
    robust; one that fails only on the perturbed set is less robust."""
    n = 40
    gold = (GOLD * n)[:n]
    rows, preds = [], []

    def add(run_id, method, seed, regular, perturbed):
        for test_set, pred in (("regular", regular), ("in_language", perturbed)):
            rows.append({"run_id": run_id, "setting": "monolingual", "train_languages": "yo", "language": "yo",
                         "method": method, "scope": "none" if method == "dense" else "partial",
                         "target_sparsity": 0.0 if method == "dense" else 0.5, "seed": seed, "test_set": test_set,
                         "f1": f1_score(gold, pred)})
            preds.extend({"run_id": run_id, "language": "yo", "test_set": test_set, "sentence": k, "gold": g, "pred": q}
                         for k, (g, q) in enumerate(zip(gold, pred)))

    half = [[("O" if k % 2 else t) for t in g] for k, g in enumerate(gold)]
    for s in range(3):
        add(f"d{s}", "dense", s, gold, gold)
        add(f"p{s}", "imp", s, half, half)
    pairs = compare.dense_pairs(pd.DataFrame(rows))
    pert = pairs[pairs["test_set"] == "in_language"]
    absolute = compare.cell_intervals(pert, pd.DataFrame(preds), n_resamples=300).iloc[0]
    ratio = compare.cell_intervals(pert, pd.DataFrame(preds), n_resamples=300, ratio=True).iloc[0]
    assert absolute["verdict"] == "lower"
    assert ratio["f1_a"] == pytest.approx(1.0) and ratio["f1_b"] == pytest.approx(1.0)
    assert ratio["difference"] == pytest.approx(0.0) and ratio["verdict"] == "no clear difference"
    with pytest.raises(ValueError, match="regular set"):
        compare.cell_intervals(pairs, pd.DataFrame(preds), ratio=True)
    rows.clear()
    preds.clear()
    for s in range(3):  # now the pruned model fails only on swapped mentions
        add(f"d{s}", "dense", s, gold, gold)
        add(f"p{s}", "imp", s, gold, half)
    pairs = compare.dense_pairs(pd.DataFrame(rows))
    fragile = compare.cell_intervals(pairs[pairs["test_set"] == "in_language"], pd.DataFrame(preds), n_resamples=300,
                                     ratio=True).iloc[0]
    assert fragile["f1_b"] < 0.9 and fragile["verdict"] == "lower"


def test_a_cell_without_a_p_value_counts_as_unclear():
    base = {"seeds": 3, "seeds_agree": True, "collapsed": False, "test_var": 1e-4, "seed_var": 1e-4, "n_sentences": 200}
    cells = pd.DataFrame([{**base, "difference": -0.3, "p": 1e-9},
                          {**base, "difference": float("nan"), "p": float("nan"), "test_var": float("nan")}])
    assert compare.directions(cells).tolist() == ["lower", "no clear difference"]


def test_pool_pairs_match_the_two_embedding_pools_and_the_book_keeps_one(tmp_path):
    from polycompress import analysis

    base = {"setting": "monolingual", "train_languages": "yo", "language": "yo", "method": "imp",
            "target_sparsity": 0.5, "seed": 0, "test_set": "regular", "f1": 0.5, "subnetworks": "shared"}
    results = pd.DataFrame([
        {**base, "run_id": "dense", "method": "dense", "scope": "none", "embedding_pool": "none", "target_sparsity": 0.0},
        {**base, "run_id": "part", "scope": "partial", "embedding_pool": "none"},
        {**base, "run_id": "emb-full", "scope": "incl_embeddings", "embedding_pool": "full"},
        {**base, "run_id": "emb-trim", "scope": "incl_embeddings", "embedding_pool": "trimmed"},
        {**base, "run_id": "emb-trim-1", "scope": "incl_embeddings", "embedding_pool": "trimmed", "seed": 1},
    ])
    assert compare.pool_pairs(results)[["run_a", "run_b"]].values.tolist() == [["emb-trim", "emb-full"]]
    results.to_parquet(tmp_path / "results.parquet")
    kept = analysis.load_results(tmp_path / "results.parquet")
    assert sorted(kept["run_id"]) == ["dense", "emb-full", "part"]  # one model per cell for every comparison
    assert len(compare.scope_pairs(kept)) == 1
    assert len(analysis.load_results(tmp_path / "results.parquet", embedding_pool=None)) == 5


def test_a_cells_interval_does_not_depend_on_the_other_cells_and_a_seed_counts_once():
    """Each cell draws its own resamples (seeded by its key): adding or reordering cells leaves
    its interval unchanged. A run counted twice in one cell would pass for a second seed."""
    results, predictions = _results_and_predictions()
    other_r, other_p = _results_and_predictions(pruned=GOLD)
    other_r = other_r.assign(run_id=other_r["run_id"] + "2", language="sw")
    other_p = other_p.assign(run_id=other_p["run_id"] + "2", language="sw")
    both_r, both_p = pd.concat([other_r, results]), pd.concat([other_p, predictions])
    alone = compare.cell_intervals(compare.dense_pairs(results), predictions, n_resamples=300)
    together = compare.cell_intervals(compare.dense_pairs(both_r), both_p, n_resamples=300)
    assert together.set_index("language").loc["yo", "low"] == alone.iloc[0]["low"]
    pairs = compare.dense_pairs(results)
    with pytest.raises(ValueError, match="a seed appears twice"):
        compare.cell_intervals(pd.concat([pairs, pairs]), predictions, n_resamples=50)
    with pytest.raises(ValueError, match="appear more than once"):
        compare.dense_pairs(pd.concat([results, results]))


def test_exposure_cells_compare_each_union_with_the_same_monolingual_models():
    """Claim-1 cells twice: the grid's multilingual model (equal exposure) and the union one,
    each against the grid's monolingual model; a seed's difference is F1(multi) - F1(mono)."""
    from polycompress import analysis

    base = {"train_languages": "yo", "language": "yo", "method": "dense", "scope": "none", "subnetworks": "shared",
            "target_sparsity": 0.0, "test_set": "regular"}
    rows, preds = [], []
    for seed in (0, 1, 2):
        for run, setting, pred in (("mono", "monolingual", WORSE), ("equal", "multilingual", GOLD),
                                   ("union", "multilingual", WORSE)):
            run_id = f"{run}{seed}"
            rows.append({**base, "run_id": run_id, "setting": setting, "seed": seed, "f1": f1_score(GOLD, pred),
                         "train_languages": "yo" if setting == "monolingual" else "yo,sw"})
            preds += [{"run_id": run_id, "language": "yo", "test_set": "regular", "sentence": k, "gold": g, "pred": p}
                      for k, (g, p) in enumerate(zip(GOLD * 20, pred * 20))]
    table, predictions = pd.DataFrame(rows), pd.DataFrame(preds)
    grid = table[table["run_id"].str.match("mono|equal")]
    union = table[table["run_id"].str.startswith("union")]
    cells = analysis.exposure_cells(grid, predictions[predictions["run_id"].str.match("mono|equal")], union,
                                    predictions[predictions["run_id"].str.startswith("union")]).set_index("exposure")
    assert list(cells.index) == ["equal", "union"] and (cells["seeds"] == 3).all()
    assert cells.loc["equal", "difference"] == pytest.approx(1.0 - f1_score(GOLD, WORSE))
    assert cells.loc["union", "difference"] == pytest.approx(0.0)


def test_seed_cells_give_a_t_interval_over_seeds_and_take_the_book_s_rule():
    """Post-training copies keep no predictions: their cells are over seeds alone. Three seeds
    all 0.05 above (spread 0.01) are clearly higher; a cell whose seeds straddle zero is not;
    the equivalence rule needs the whole interval inside the margin."""
    from polycompress.compare import claim_verdict, equivalence_verdict, seed_cells

    rows = []
    for seed, (base, up, mixed) in enumerate([(0.70, 0.75, 0.71), (0.72, 0.78, 0.70), (0.71, 0.75, 0.72)]):
        rows += [{"language": "hau", "seed": seed, "model": "a", "f1": base},
                 {"language": "hau", "seed": seed, "model": "b", "f1": up},
                 {"language": "yor", "seed": seed, "model": "a", "f1": base},
                 {"language": "yor", "seed": seed, "model": "b", "f1": mixed}]
    cells = seed_cells(pd.DataFrame(rows), ["language"], "a", "b").set_index("language")
    assert cells.loc["hau", "difference"] == pytest.approx(0.05, abs=1e-9) and cells.loc["hau", "seeds"] == 3
    d = np.array([0.05, 0.06, 0.04])
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
    assert cells.loc["hau", "low"] == pytest.approx(0.05 - half) and cells.loc["hau", "high"] == pytest.approx(0.05 + half)
    assert cells.loc["hau", "seeds_agree"] and not cells.loc["yor", "seeds_agree"]
    assert claim_verdict(cells.loc[["hau"]].reset_index(), "higher") == "holds"
    assert claim_verdict(cells.reset_index(), "higher") == "holds in part"
    assert equivalence_verdict(cells.loc[["yor"]].reset_index(), margin=0.2) == "holds"
    assert equivalence_verdict(cells.loc[["hau"]].reset_index(), margin=0.02) == "does not hold"
    assert equivalence_verdict(cells.loc[["yor"]].reset_index(), margin=0.01) == "cannot tell"


def test_seed_cells_refuse_two_models_under_one_key():
    """Two rows for one (cell, seed, model) are two models (say two scopes): averaging them, as a
    pivot would, passes them for one; the cells refuse and name a row."""
    from polycompress.compare import seed_cells

    rows = [{"language": "sw", "seed": s, "model": m, "f1": f} for s in range(3) for m, f in (("a", 0.7), ("b", 0.8))]
    rows.append({"language": "sw", "seed": 1, "model": "b", "f1": 0.3})
    with pytest.raises(ValueError, match="language=sw, seed=1, model=b"):
        seed_cells(pd.DataFrame(rows), ["language"], "a", "b")


def test_seed_cells_can_judge_a_model_that_survives_where_the_other_collapses():
    from polycompress.compare import claim_verdict, seed_cells

    rows = [{"language": "hau", "seed": s, "model": m, "f1": f}
            for s, (dead, alive) in enumerate([(0.0, 0.30), (0.01, 0.35), (0.0, 0.28)])
            for m, f in (("after", dead), ("before", alive))]
    usual = seed_cells(pd.DataFrame(rows), ["language"], "after", "before")
    assert usual["collapsed"].all() and claim_verdict(usual, "higher") == "cannot tell"
    both = seed_cells(pd.DataFrame(rows), ["language"], "after", "before", collapsed_when="both")
    assert not both["collapsed"].any() and claim_verdict(both, "higher") == "holds"
    with pytest.raises(ValueError, match="collapsed_when"):
        seed_cells(pd.DataFrame(rows), ["language"], "after", "before", collapsed_when="one")
