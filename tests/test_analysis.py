import pandas as pd
import pytest
from scipy.stats import spearmanr

from polycompress import analysis, languages, reference


def fake_results() -> pd.DataFrame:
    rows = []
    for method, scope, sp, f1 in [("dense", "none", 0.0, 0.8), ("imp", "partial", 0.5, 0.84), ("imp", "incl_embeddings", 0.5, 0.4)]:
        rows.append({"run_id": f"{method}{scope}", "setting": "multilingual", "language": "yo", "method": method,
                     "scope": scope, "target_sparsity": sp, "seed": 0, "test_set": "regular", "f1": f1})
    rows.append({**rows[0], "test_set": "in_script", "f1": float("nan")})  # unavailable set
    return pd.DataFrame(rows)


def test_long_format_repeats_dense_under_both_scopes():
    long = analysis.as_long(fake_results())
    assert set(long.columns) == set(analysis.LONG)
    assert len(long[(long["sparsity"] == 0)]) == 2 and long["f1"].notna().all()


def test_relative_change_against_the_matching_dense_run():
    rel = analysis.relative_to_dense(analysis.as_long(fake_results())).set_index("scope")
    assert rel.loc["partial", "relative_change"] == pytest.approx(0.05)
    assert rel.loc["incl_embeddings", "relative_change"] == pytest.approx(-0.5)


def test_paper_numbers_the_book_states():
    long = reference.as_long()
    gains = analysis.gains_at(long, 50)
    assert len(gains) == 40
    # the same count straight from the raw Table 2 cells, computed independently
    t2 = reference.f1_by_language().query("paper_table == 2").pivot(index="language", columns="sparsity", values="f1")
    assert gains["gains"].sum() == (t2[50] > t2[0]).sum()
    mg = analysis.multilingual_gain(long)
    assert len(mg) == 10 and (mg["seed"] == -1).all()
    sizes = mg["language"].map(lambda c: languages.get(c).paper_train_size)
    rho = spearmanr(sizes, mg["gain"]).statistic
    assert -1 <= rho <= 1


def test_correlation_matches_scipy_and_refuses_tiny_samples():
    from scipy.stats import spearmanr

    x = pd.Series([0.1, 0.2, 0.4, 0.8, 0.3, 0.6])
    y = pd.Series([0.5, 0.55, 0.7, 0.9, 0.72, 0.6])
    c = analysis.correlation(x, y)
    assert c["n"] == 6 and c["spearman"] == pytest.approx(spearmanr(x, y).statistic) and 0 < c["pearson"] <= 1
    # three or four points that agree would print Spearman 1.000: below five there is no coefficient
    few = analysis.correlation(x[:4], y[:4])
    assert few["n"] == 4 and pd.isna(few["spearman"]) and pd.isna(few["pearson"])
    assert analysis.MIN_CORRELATION_N == 5


def test_robustness_ratio_excludes_near_zero_regular_f1_and_says_so():
    long = pd.DataFrame({"source": "ours", "setting": "m", "scope": "partial", "language": ["a", "a", "b", "b"],
                         "sparsity": 90, "seed": 0, "test_set": ["regular", "in_language"] * 2,
                         "f1": [0.8, 0.4, 0.005, 0.02]})
    rob = analysis.robustness_long(long, min_regular=0.1).set_index("language")
    assert rob.loc["a", "ratio"] == pytest.approx(0.5) and not rob.loc["a", "excluded"]
    assert pd.isna(rob.loc["b", "ratio"]) and rob.loc["b", "excluded"]
    # by default the floor is the collapse rule's
    from polycompress.compare import COLLAPSE_F1

    low = long.assign(f1=[COLLAPSE_F1 - 0.01, 0.1, 0.8, 0.4])
    assert analysis.robustness_long(low).set_index("language")["excluded"].to_dict() == {"a": True, "b": False}


def test_long_format_takes_one_method_with_the_dense_runs():
    df = fake_results()
    grad = df[df["method"] == "imp"].assign(method="grad", run_id="g", f1=0.1)
    long = analysis.as_long(pd.concat([df, grad]))
    assert 0.1 not in set(long["f1"]) and len(long) == len(analysis.as_long(df))
    assert set(analysis.as_long(pd.concat([df, grad]), method="grad")["f1"]) >= {0.1, 0.8}


def test_model_label_tells_non_shared_runs_apart():
    df = pd.DataFrame({"method": ["dense", "grad", "grad"], "scope": ["none", "partial", "partial"],
                       "target_sparsity": [0.0, 0.5, 0.5], "subnetworks": ["shared", "shared", "non_shared"]})
    assert analysis.model_label(df).tolist() == ["dense", "grad partial 50%", "grad partial 50% non-shared"]
    assert analysis.model_label(df.drop(columns="subnetworks")).tolist()[1] == "grad partial 50%"


def test_languages_beyond_the_table_keep_their_facts_and_unknown_is_a_group():
    rows = pd.DataFrame({"language": ["de", "tsn", "mwl"], "f1": [0.8, 0.6, 0.5]})
    out = analysis.with_buckets(rows).set_index("language")
    assert out.loc["tsn", "family"] == "Atlantic-Congo" and out.loc["tsn", "bucket"] == "not in paper"
    assert out.loc["mwl", "script"] == "unknown"  # CLDR knows none: a value, not NaN
    assert out.groupby("script")["f1"].size().to_dict() == {"Latn": 2, "unknown": 1}  # nothing dropped


def test_component_split_weighs_heads_and_units_by_their_parameters():
    from transformers import BertConfig

    from polycompress import analysis

    config = BertConfig(hidden_size=8, num_attention_heads=2, num_hidden_layers=2, intermediate_size=4)
    heads = pd.DataFrame([{"run_id": "r", "subnetwork": "all", "layer": l, "head": h, "kept": not (l == 0 and h == 0)}
                          for l in range(2) for h in range(2)])
    units = pd.DataFrame([{"run_id": "r", "subnetwork": "all", "layer": l, "kept_share": 0.5} for l in range(2)])
    out = analysis.component_split(heads, units, config=config).iloc[0]
    head_cost, unit_cost = 4 * 8 * 4 + 3 * 4, 2 * 8 + 1  # one head, and 4 of 8 units removed
    assert out["heads_removed"] == 0.25 and out["units_removed"] == 0.5
    assert out["head_share_of_removed"] == pytest.approx(head_cost / (head_cost + 4 * unit_cost))
