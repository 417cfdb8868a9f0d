"""Dynamic Sparsification of gradient pruning (Li et al. 2022, Sec. 6.1, appendix D): nested
subnetworks, each at its target, trained by sampled levels, removable exactly."""

import numpy as np
import pandas as pd
import pytest
import torch

from polycompress.compress.pruning import Schedule
from polycompress.compress.pruning.dynamic import DynamicGradientPruner, nested_structures, removal_levels
from polycompress.compress.pruning.structured import costs, encoder_layers, gradient_importance, pruned_share

from test_structured import batches  # the toy batches of the tiny BERT

LEVELS = [0.1, 0.3, 0.5, 0.7]


def trained(model, steps=12, start=3, seed=0, scope="partial"):
    pruner = DynamicGradientPruner(model, Schedule(start, start, 1, LEVELS[-1]), scope=scope,
                                   importance_batches=lambda: batches(2), levels=LEVELS, seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step, batch in enumerate(batches(steps, seed=5)):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        pruner.step(step)
    pruner.finish()
    return pruner


def test_levels_are_nested_and_each_meets_its_target(tiny_bert):
    pruner = trained(tiny_bert.train())
    head, unit, total = costs(tiny_bert)
    assert pruner.ranked_at == 3 and sorted(pruner.structures) == LEVELS
    for level in LEVELS:
        # whole heads and units are removed: within one of each of the target, never short of it by more
        assert abs(pruner.achieved(level) - level) <= (head + unit) / total
        s = pruner.structures[level]
        assert (s.heads.sum(1) >= 1).all() and (s.units.sum(1) >= 1).all()
    for low, high in zip(LEVELS, LEVELS[1:]):
        a, b = pruner.structures[low], pruner.structures[high]
        # a sparser subnetwork keeps a subset of a denser one's heads and units
        assert not (b.heads & ~a.heads).any() and not (b.units & ~a.units).any()
        assert pruner.achieved(high) > pruner.achieved(low)
    # the removal levels encode every structure: kept at s exactly when removed above s
    heads_at, units_at = pruner.removed_at
    for level in LEVELS:
        assert torch.equal(heads_at > level, pruner.structures[level].heads)
        assert torch.equal(units_at > level, pruner.structures[level].units)


def test_weights_are_shared_and_each_step_trains_one_drawn_level(tiny_bert):
    model = tiny_bert.train()
    pruner = trained(model, steps=40)
    # steps 4..39 trained drawn levels (the draw after the last step is for a step that never came)
    assert pruner.history == [(3, LEVELS[-1])] and len(pruner.drawn) == 40 - 3
    counts = pruner.steps_per_level()
    assert sum(counts.values()) == 36 and all(counts[level] > 0 for level in LEVELS)
    again = trained(type(model)(model.config).train(), steps=40)  # same seed: the same draws
    assert again.drawn == pruner.drawn
    # gates, not zeroed weights: no FFN weight row is all zero though 70% of the encoder is gated off
    w = encoder_layers(model)[0].intermediate.dense.weight
    assert not (w == 0).all(dim=1).any()
    # a step through a level gives no gradient to what that level removed
    pruner.use(0.5)
    model(**batches(1, seed=4)[0]).loss.backward()
    dropped = ~pruner.structures[0.5].units[0]
    grad = encoder_layers(model)[0].intermediate.dense.weight.grad
    assert dropped.any() and (grad[dropped] == 0).all() and (grad[~dropped] != 0).any()


def test_the_training_curve_records_the_level_each_step_trained(tiny_bert):
    model = tiny_bert.train()
    pruner = DynamicGradientPruner(model, Schedule(3, 3, 1, LEVELS[-1]), importance_batches=lambda: batches(2),
                                   levels=LEVELS, seed=0)
    shares = []
    for step, batch in enumerate(batches(20, seed=5)):
        model(**batch).loss.backward()
        model.zero_grad()
        pruner.step(step)
        shares.append(pruner.current)  # what training.train logs for this step
    assert shares[:4] == [0.0] * 4  # dense up to and including the ranking's step
    for step in range(4, 20):  # step t ran the level drawn after step t - 1
        assert shares[step] == pruner.achieved(pruner.drawn[step - 4])


def test_a_removed_level_predicts_as_the_gated_model(tiny_bert):
    model = tiny_bert
    pruner = trained(model.train())
    model.eval()
    ids = batches(1, seed=9)[0]["input_ids"]
    head, unit, _ = costs(model)
    full = sum(p.numel() for p in model.parameters())
    for level in LEVELS:
        pruner.use(level)
        with torch.no_grad():
            gated = model(input_ids=ids).logits
        small = pruner.compacted(level).eval()
        s = pruner.structures[level]
        removed = int((~s.heads).sum()) * head + int((~s.units).sum()) * unit
        assert full - sum(p.numel() for p in small.parameters()) == removed
        with torch.no_grad():
            assert torch.allclose(gated, small(input_ids=ids).logits, atol=1e-5)
        with torch.no_grad():  # the gates are back on the original after compacting
            assert torch.equal(model(input_ids=ids).logits, gated)
    pruner.use(0.0)
    with torch.no_grad():
        dense = model(input_ids=ids).logits
    pruner.remove_gates()
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, dense)


def test_with_the_embeddings_their_rank_components_are_nested_levels_too(tiny_bert):
    """Scope incl_embeddings: the factorised embeddings' rank components are ranked with the
    heads and units, each level meets its target over encoder and factors, sparser levels keep
    subsets, and a removed level (rank included) predicts as the gated model."""
    from polycompress.compress.pruning.embedding_rank import factorised
    from polycompress.compress.pruning.structured import rank_costs

    model = tiny_bert
    pruner = trained(model.train(), scope="incl_embeddings")
    emb = factorised(model)
    assert emb is not None
    head, unit, total = costs(model)
    rank, emb_total = rank_costs(model)
    for level in LEVELS:
        s = pruner.structures[level]
        assert s.ranks is not None and abs(pruner.achieved(level) - level) <= (head + unit + rank) / (total + emb_total)
        assert torch.equal(pruner.ranks_removed_at > level, s.ranks)
    assert (~pruner.structures[LEVELS[-1]].ranks).any()  # the rank is pruned at the largest level
    for low, high in zip(LEVELS, LEVELS[1:]):
        assert not (pruner.structures[high].ranks & ~pruner.structures[low].ranks).any()
    model.eval()
    ids = batches(1, seed=9)[0]["input_ids"]
    for level in LEVELS:
        pruner.use(level)
        assert torch.equal(emb.gate.bool(), pruner.structures[level].ranks)
        with torch.no_grad():
            gated = model(input_ids=ids).logits
            small = pruner.compacted(level).eval()
            assert factorised(small).rank == int(pruner.structures[level].ranks.sum())
            assert torch.allclose(gated, small(input_ids=ids).logits, atol=1e-5)
            assert torch.equal(model(input_ids=ids).logits, gated)  # gates back after compacting
    assert any(t.name.endswith("word_embeddings.left") for t in pruner.report().tensors)
    pruner.remove_gates()
    assert emb.gate is None


def test_one_ranking_gives_the_same_structures_as_selecting_each_level_alone(tiny_bert):
    """With fixed scores, nesting costs nothing: each level is what a one-shot selection of that
    target alone removes (the greedy order is one order)."""
    from polycompress.compress.pruning.structured import select

    heads, units = gradient_importance(tiny_bert.eval(), batches())
    nested = nested_structures(tiny_bert, heads, units, LEVELS)
    for level in LEVELS:
        alone = select(tiny_bert, heads, units, level)
        assert torch.equal(alone.heads, nested[level].heads) and torch.equal(alone.units, nested[level].units)
    h, u = removal_levels(nested)
    assert h.shape == heads.shape and u.shape == units.shape
    # what the sparsest level keeps is removed at no level; the rest at exactly one
    assert torch.equal(torch.isinf(u), nested[LEVELS[-1]].units) and torch.equal(torch.isinf(h), nested[LEVELS[-1]].heads)


def test_bad_levels_are_refused(tiny_bert):
    with pytest.raises(ValueError, match="distinct sparsities"):
        DynamicGradientPruner(tiny_bert, Schedule(1, 1, 1, 0.5), importance_batches=lambda: [], levels=[0.5, 0.5])
    with pytest.raises(ValueError, match="largest level"):
        DynamicGradientPruner(tiny_bert, Schedule(1, 1, 1, 0.5), importance_batches=lambda: [], levels=[0.3, 0.7])
    pruner = DynamicGradientPruner(tiny_bert, Schedule(1, 1, 1, 0.5), importance_batches=lambda: batches(1),
                                   levels=[0.5])
    with pytest.raises(KeyError, match="ranking has not been made"):
        pruner.use(0.5)
    pruner.finish()  # training ended before the schedule's start: the ranking is made now
    assert pruner.ranked_at == -1 and pruner.level == 0.5 and pruned_share(tiny_bert, pruner.structures[0.5]) >= 0.45


BASE = dict(languages=("sw",), setting="monolingual", vocab_languages=("sw",), train_size=64, eval_size=8,
            epochs=1.0, batch_size=8, max_length=32, learning_rate=2e-4, method="grad")


def test_dynamic_is_validated_leaves_older_ids_alone_and_is_a_grid_key():
    from polycompress.config import ConfigError, RunConfig
    from polycompress.grid import Grid

    plain = RunConfig(**BASE, sparsity=0.5)
    assert "dynamic" not in plain.canonical()
    assert RunConfig(**BASE, sparsity=0.5, dynamic=(0.3, 0.5)).run_id != plain.run_id
    with pytest.raises(ConfigError, match="largest level"):
        RunConfig(**BASE, sparsity=0.3, dynamic=(0.3, 0.5))
    with pytest.raises(ConfigError, match="implemented for methods"):
        RunConfig(**{**BASE, "method": "imp"}, sparsity=0.5, dynamic=(0.5,))
    with pytest.raises(ConfigError, match="distinct sparsities"):
        RunConfig(**BASE, sparsity=1.0 - 1e-9, dynamic=(0.5, 1.0 - 1e-9, 1.0))
    spec = {"languages": ["sw"], "monolingual": ["sw"], "multilingual": False, "methods": ["grad"],
            "scopes": ["partial"], "sparsities": [0.5], "seeds": [0, 1], "epochs": {"default": 1}, "train_size": 50,
            "dynamic": [0.1, 0.5, 0.9]}
    with pytest.raises(ConfigError, match="methods must include one of"):
        Grid("g", {**spec, "methods": ["imp"]}).runs()
    both = [r for r in Grid("g", {**spec, "methods": ["grad", "l0"]}).runs() if r.dynamic]
    assert sorted(r.method for r in both) == ["grad", "grad", "l0", "l0"]  # one DS run per method and seed
    runs = Grid("g", spec).runs()
    ds = [r for r in runs if r.dynamic]
    assert [(r.seed, r.sparsity, r.dynamic) for r in ds] == [(0, 0.9, (0.1, 0.5, 0.9)), (1, 0.9, (0.1, 0.5, 0.9))]
    assert len(runs) == 2 * 3  # dense, grad 50% trained alone, DS: per seed


def test_a_dynamic_run_scores_every_level_on_every_test_set(real_mirror, e5_folder, tmp_path):
    import json

    from polycompress.config import RunConfig
    from polycompress.experiment import run, test_set_names

    levels = (0.1, 0.3, 0.5)
    config = RunConfig(**BASE, sparsity=0.5, dynamic=levels)
    folder = tmp_path / "runs" / config.run_id
    out = run(config, folder, progress=False, device="cpu", threads=1)
    rows = out.rows
    assert rows["dynamic"].all() and sorted(set(rows.target_sparsity)) == list(levels)
    for level in levels:
        at = rows[rows.target_sparsity == level]
        assert sorted(at.test_set) == sorted(test_set_names(config))  # regular and perturbed, each once
        assert at.achieved_sparsity.sub(level).abs().max() < 0.02  # a head and a unit of e5-small: < 0.02
        assert at[at.test_set == "regular"].n_sentences.iloc[0] == 8
    # predictions are kept for the run's own level: one set per (language, test set)
    assert len(out.predictions) == 8 * len(test_set_names(config))
    structure = json.loads((folder / "structure.json").read_text())
    kept = [sum(structure["levels"][str(level)]["units_kept"]) for level in levels]
    assert kept == sorted(kept, reverse=True) and kept[0] < 12 * 1536
    heads = [torch.tensor(structure["levels"][str(level)]["heads"]) for level in levels]
    assert all(not (b & ~a).any() for a, b in zip(heads, heads[1:]))  # nested
    done = json.loads((folder / "done.json").read_text())
    assert done["ranked_at"] == 0  # 8 steps: the derived schedule starts at step int(0.1 * 8) = 0
    assert sum(done["steps_per_level"].values()) == done["steps"] - 1  # every step after the ranking
    curve = pd.read_csv(folder / "curve.csv")
    assert set(curve.sparsity.round(1)) <= {0.0, *levels}

    # beside a grad run trained for 50% alone: the book's tables of the two
    from polycompress import analysis, runner

    alone = RunConfig(**BASE, sparsity=0.5)
    run(alone, tmp_path / "runs" / alone.run_id, progress=False, device="cpu", threads=1)
    runner.collect(tmp_path)
    every = analysis.load_results(tmp_path / "results.parquet", dynamic=None)
    assert len(analysis.load_results(tmp_path / "results.parquet")) == len(every) - len(rows)  # DS left out by default
    f1 = analysis.dynamic_f1(every)
    assert sorted(f1.groupby("training").size().items()) == [("DS", 3), ("trained alone", 1)]  # regular, sw
    # structured runs of a second scope would be second models under the same keys: refused
    other = every[every.method == "grad"].assign(scope="incl_embeddings", run_id="other")
    with pytest.raises(ValueError, match="2 scopes"):
        analysis.dynamic_f1(pd.concat([every, other], ignore_index=True))
    cells = analysis.dynamic_cells(f1)
    assert cells[["sparsity", "language", "seeds"]].values.tolist() == [[0.5, "sw", 1]]
    ds_at = f1[(f1.training == "DS") & (f1.sparsity == 0.5)].f1.iloc[0]
    assert cells.difference.iloc[0] == pytest.approx(ds_at - f1[f1.training == "trained alone"].f1.iloc[0])
    heads, units = analysis.structures(tmp_path / "results.parquet")
    assert sorted(heads.loc[heads.run_id == config.run_id, "level"].unique()) == list(levels)
    assert heads.loc[heads.run_id == alone.run_id, "level"].isna().all()
    split = analysis.component_split(heads, units)
    assert len(split) == len(levels) + 1 and split.set_index("level").loc[0.5, "units_removed"] > 0
    # per layer: nested levels never give a layer back what a lower level removed; on average
    # a level removes about its share of the encoder (heads and units are nearly all of it)
    by_layer = analysis.layer_sparsity(heads[heads.run_id == config.run_id], units[units.run_id == config.run_id])
    wide = by_layer.pivot_table(index="layer", columns="level", values="removed")
    assert (wide.diff(axis=1).fillna(0) >= 0).all().all()
    assert (wide.mean() - pd.Series(levels, index=wide.columns)).abs().max() < 0.03


def test_loss_against_pretraining_data_pairs_seeds_and_correlates_on_the_log_scale():
    """Li et al.'s Fig. 2 arithmetic: loss = dense - pruned of the same seed, averaged over seeds;
    Pearson r with log10 of XLM-R's tokens, a language XLM-R did not see counted apart."""
    from polycompress import analysis, reference

    from polycompress import languages

    tokens = reference.xlmr_pretraining_tokens().set_index("code")["tokens_millions"]
    # every PAN-X language of the paper's table but Yoruba, which XLM-R did not see
    panx = set(languages.table().query("corpus == 'panx'")["code"])
    assert set(tokens.index) == panx - {"yo"} and tokens.idxmax() == "en" and tokens.notna().all()
    codes = ["en", "ar", "kk", "sw", "jv", "yo"]
    rows = []
    for seed in (0, 1):
        for code in codes:
            dense = 0.8 + 0.01 * seed
            # loss falls exactly with log tokens (yo: any loss, it has no count)
            loss = 0.5 if code == "yo" else 0.5 - 0.1 * float(np.log10(tokens[code]))
            rows.append({"setting": "multilingual", "method": "dense", "language": code, "sparsity": 0.0, "seed": seed,
                         "training": "dense", "f1": dense})
            rows.append({"setting": "multilingual", "method": "grad", "language": code, "sparsity": 0.5, "seed": seed,
                         "training": "DS", "f1": dense - loss})
    loss = analysis.loss_by_pretraining(pd.DataFrame(rows))
    assert (loss["seeds"] == 2).all() and loss["pretraining_tokens_millions"].isna().sum() == 1
    corr = analysis.pretraining_correlation(loss).iloc[0]
    assert corr["languages"] == 5 and corr["without_tokens"] == 1 and corr["r"] == pytest.approx(-1.0)


def test_whether_ds_costs_one_method_more_than_another_pairs_seeds_and_languages():
    """Table 3's comparison: per language and seed, (DS - trained alone) of grad minus that of
    l0; a negative difference (DS cost grad more) is "lower"; methods do not mix in the
    DS-vs-alone cells."""
    from polycompress import analysis, compare

    rows = []
    rng = np.random.default_rng(0)
    for code in ["en", "sw", "kk", "yo"]:
        for seed in (0, 1, 2):
            alone = 0.7 + 0.01 * seed
            for method, cost in (("grad", -0.10), ("l0", -0.01)):
                rows.append({"setting": "multilingual", "method": method, "language": code, "sparsity": 0.5,
                             "seed": seed, "training": "trained alone", "f1": alone})
                rows.append({"setting": "multilingual", "method": method, "language": code, "sparsity": 0.5,
                             "seed": seed, "training": "DS", "f1": alone + cost + rng.normal(0, 0.002)})
    f1 = pd.DataFrame(rows)
    cells = analysis.ds_cost_by_method(f1, 0.5)
    assert len(cells) == 4 and (cells["seeds"] == 3).all()
    assert cells["difference"].mean() == pytest.approx(-0.09, abs=0.005)
    assert compare.claim_verdict(cells, "lower") == "holds"
    per_method = analysis.dynamic_cells(f1)
    assert sorted(per_method["method"].unique()) == ["grad", "l0"] and len(per_method) == 8
    assert per_method.groupby("method")["difference"].mean()["grad"] == pytest.approx(-0.10, abs=0.005)
    # one method alone: nothing to compare
    assert analysis.ds_cost_by_method(f1[f1["method"] == "grad"], 0.5).empty
