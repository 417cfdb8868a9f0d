"""When IMP prunes (RunConfig.prune_at; Awobade et al. 2023): before fine-tuning the masks come
from the pre-trained weights and are held, after it from the fine-tuned ones (then optionally
more epochs with them held), during it on the gradual schedule as always."""

import json

import pandas as pd
import pytest
import torch

from polycompress.config import ConfigError, RunConfig
from polycompress.grid import Grid

BASE = dict(languages=("sw",), setting="monolingual", vocab_languages=("sw",), train_size=64, eval_size=8,
            epochs=1.0, batch_size=8, max_length=32, learning_rate=2e-4, method="imp", sparsity=0.5)


def test_prune_at_is_validated_and_leaves_older_run_ids_alone():
    assert "prune_at" not in RunConfig(**BASE).canonical() and "recovery_epochs" not in RunConfig(**BASE).canonical()
    assert RunConfig(**BASE, prune_at="before").run_id != RunConfig(**BASE).run_id
    with pytest.raises(ConfigError, match="prune_at must be one of"):
        RunConfig(**BASE, prune_at="later")
    with pytest.raises(ConfigError, match="for magnitude pruning"):
        RunConfig(**{**BASE, "method": "grad"}, prune_at="after")
    with pytest.raises(ConfigError, match="recovery_epochs"):
        RunConfig(**BASE, recovery_epochs=1.0)  # during: nothing to recover from


def test_the_grid_takes_prune_at_as_an_axis_of_imp_runs():
    spec = {"languages": ["sw"], "monolingual": ["sw"], "multilingual": False, "methods": ["imp"],
            "scopes": ["partial"], "sparsities": [0.5], "seeds": [0], "epochs": {"default": 1}, "train_size": 50,
            "prune_at": ["before", "during", "after"], "recovery_epochs": 1}
    runs = Grid("g", spec).runs()
    assert sorted((r.method, r.prune_at, r.recovery_epochs) for r in runs) == [
        ("dense", "during", 0.0), ("imp", "after", 1.0), ("imp", "before", 0.0), ("imp", "during", 0.0)]
    with pytest.raises(ConfigError, match="prune_at must be distinct"):
        Grid("g", {**spec, "prune_at": ["soon"]}).runs()


def test_masks_set_before_training_are_those_of_the_pre_trained_weights_and_hold(tiny_bert):
    """The mechanism of prune_at "before" (and "after"): prune_to on the weights as they are,
    then a schedule that never updates; the optimizer moves the kept weights, never the pruned."""
    import copy

    from polycompress.compress.pruning import MagnitudePruner, Schedule
    from polycompress.training import train

    from test_training import toy_data

    pre = copy.deepcopy(tiny_bert)
    reference = MagnitudePruner(pre, Schedule(0, 0, 1, 0.5), "partial")
    reference.update_masks(0.5)
    pruner = MagnitudePruner(tiny_bert, Schedule.held(0.5), "partial")
    pruner.prune_to(0.5, 0)
    train(tiny_bert, toy_data(), epochs=2, batch_size=8, learning_rate=1e-3, weight_decay=0.0, seed=0, pad_id=1,
          after_step=pruner.step, progress=False)
    assert pruner.history == [(0, 0.5)]
    for name, p in pruner.params.items():
        pruned = reference.masks[name] == 0
        assert torch.equal(p.detach() == 0, pruned), name  # zero exactly where the pre-trained magnitudes chose
        moved = p.detach() != pre.get_parameter(name).detach()
        assert moved[~pruned].float().mean() > 0.9  # and the kept weights were trained


def test_before_and_after_in_a_real_run(real_mirror, e5_folder, tmp_path):
    from polycompress.experiment import run

    out = run(RunConfig(**BASE, prune_at="before"), tmp_path / "before", progress=False, device="cpu", threads=1)
    assert out.sparsity.achieved == pytest.approx(0.5, abs=1e-3)
    curve = pd.read_csv(tmp_path / "before" / "curve.csv")
    assert (curve["sparsity"] == 0.5).all()  # pruned from the first step on
    assert json.loads((tmp_path / "before" / "done.json").read_text())["mask_updates"] == [[0, 0.5]]

    out = run(RunConfig(**BASE, prune_at="after", recovery_epochs=1.0), tmp_path / "after", progress=False,
              device="cpu", threads=1)
    assert out.sparsity.achieved == pytest.approx(0.5, abs=1e-3)
    curve = pd.read_csv(tmp_path / "after" / "curve.csv")
    steps = len(curve) // 2  # one epoch of fine-tuning, one of recovery
    assert len(curve) == 2 * steps and curve["step"].tolist() == list(range(len(curve)))
    assert (curve["sparsity"][:steps] == 0).all() and (curve["sparsity"][steps:] == 0.5).all()
    record = json.loads((tmp_path / "after" / "done.json").read_text())
    assert record["mask_updates"] == [[steps, 0.5]] and record["steps"] == 2 * steps
    assert set(out.rows["prune_at"]) == {"after"} and set(out.rows["recovery_epochs"]) == {1.0}


def test_prune_after_and_eval_languages_are_validated():
    dense = {**BASE, "method": "dense", "sparsity": 0.0}
    assert "prune_after" not in RunConfig(**dense).canonical() and "perturbed" not in RunConfig(**dense).canonical()
    assert RunConfig(**dense, prune_after=(0.5,)).run_id != RunConfig(**dense).run_id
    with pytest.raises(ConfigError, match="prune_after prunes copies"):
        RunConfig(**BASE, prune_after=(0.5,))  # an imp run
    with pytest.raises(ConfigError, match="distinct fractions"):
        RunConfig(**dense, prune_after=(0.5, 1.0))
    with pytest.raises(ConfigError, match="not training languages"):
        RunConfig(**dense, eval_languages=("sw",))


def test_prune_after_rows_are_an_after_run_s_and_eval_languages_are_zero_shot(real_mirror, e5_folder, tmp_path):
    """A dense run's prune_after copies score exactly what a prune_at "after" run (no recovery)
    of the same seed scores: the same fine-tuning, the same magnitudes, the same masks."""
    from polycompress.experiment import run

    dense = RunConfig(**{**BASE, "method": "dense", "sparsity": 0.0}, prune_after=(0.5,), eval_languages=("yo",),
                      perturbed=False)
    rows = run(dense, tmp_path / "dense", progress=False, device="cpu", threads=1).rows
    assert set(rows.test_set) == {"regular"}  # perturbed=False
    after = rows[rows.prune_at == "after"].set_index("language")
    assert sorted(after.index) == ["sw", "yo"] and (after.method == "imp").all()
    assert (after.target_sparsity == 0.5).all() and after.achieved_sparsity.sub(0.5).abs().max() < 1e-3
    zero_shot = rows[(rows.language == "yo") & (rows.prune_at == "during")]
    assert len(zero_shot) == 1 and zero_shot.train_size.iloc[0] == 0 and zero_shot.n_sentences.iloc[0] > 0

    separate = run(RunConfig(**BASE, prune_at="after"), tmp_path / "after", progress=False, device="cpu", threads=1).rows
    mine = separate[separate.test_set == "regular"].set_index("language").loc["sw"]
    for column in ("f1", "precision", "recall", "n_mentions", "achieved_sparsity"):
        assert after.loc["sw", column] == mine[column], column
