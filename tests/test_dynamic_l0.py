"""Dynamic Sparsification of L0 pruning (Li et al. 2022, Eq. 14-16, appendix D; ours with the
level spacing as delta): gates set from one gradient ranking, trained per sampled level, then
nested subnetworks at their targets, removable exactly."""

import pytest
import torch

from polycompress.compress.pruning import Schedule
from polycompress.compress.pruning.dynamic_l0 import EDGE, HALF_OPEN, THETA_FLOOR, DynamicL0Pruner
from polycompress.compress.pruning.structured import costs, rank_costs

from test_structured import batches  # the toy batches of the tiny BERT

LEVELS = [0.1, 0.3, 0.5, 0.7]


def pruner_for(model, start=3, scope="partial", seed=0):
    return DynamicL0Pruner(model, Schedule(start, start, 1, LEVELS[-1]), scope=scope,
                           importance_batches=lambda: batches(2), levels=LEVELS, seed=seed)


def fit(model, pruner, steps=30):
    weights = torch.optim.AdamW(model.parameters(), lr=1e-3)
    penalties = []
    for step, batch in enumerate(batches(steps, seed=5)):
        penalty = pruner.penalty()
        penalties.append(penalty.item())
        (model(**batch).loss + penalty).backward()
        weights.step()
        weights.zero_grad()
        pruner.step(step)
    return penalties


@torch.no_grad()
def test_eq16_puts_each_gate_closed_at_its_level_and_open_one_level_below(tiny_bert):
    model = tiny_bert.train()
    pruner = pruner_for(model)
    assert pruner.delta == pytest.approx(0.1) and pruner.theta_start == pytest.approx(2 * EDGE / 0.1)
    pruner.rank(0)
    heads_at, units_at = pruner.removed_at
    for level in LEVELS:
        for at, log_alpha_here, log_alpha_below in zip(
                (heads_at, units_at), pruner.log_alpha(level), pruner.log_alpha(level - pruner.delta)):
            here = (at == level).to(log_alpha_here.device)
            if here.any():
                assert torch.allclose(log_alpha_here[here], torch.tensor(-EDGE), atol=1e-4)
                assert torch.allclose(log_alpha_below[here], torch.tensor(EDGE), atol=1e-4)
            # what a lower level removed is further closed, what stays is open
            assert (log_alpha_here[(at < level).to(here.device)] < -EDGE).all()
            assert (log_alpha_here[(at > level + 1e-9).to(here.device)] >= EDGE - 1e-4).all()
    # the gates' expected sparsity starts near each level (closed with probability 0.92 at it)
    for level in LEVELS:
        assert abs(pruner.expected_sparsity(level).item() - level) < 0.1


def test_gates_train_per_level_and_the_levels_are_nested_at_their_targets(tiny_bert):
    model = tiny_bert.train()
    pruner = pruner_for(model)
    penalties = fit(model, pruner)
    assert penalties[:4] == [0.0] * 4 and all(p > 0 for p in penalties[5:])  # from the ranking (step 3) on
    assert len(pruner.misses) == 30 - 4 and pruner.multiplier > 10.0  # the multiplier rose by the misses
    start = -EDGE - (1.0 - LEVELS[-1] - pruner.delta) * pruner.theta_start  # a never-removed gate's alpha
    assert not torch.allclose(pruner.alpha[1], torch.full_like(pruner.alpha[1], start))  # the gates learned
    assert all((t >= THETA_FLOOR * pruner.theta_start - 1e-6).all() for t in pruner.theta)
    pruner.finish()
    head, unit, total = costs(model)
    for level in LEVELS:
        assert abs(pruner.achieved(level) - level) <= (head + unit) / total
    for low, high in zip(LEVELS, LEVELS[1:]):
        a, b = pruner.structures[low], pruner.structures[high]
        assert not (b.heads & ~a.heads).any() and not (b.units & ~a.units).any()
    # what moved from the gradient ranking the gates started from is counted per level
    assert sorted(pruner.moved) == LEVELS and all(
        n == int((pruner.structures[lv].heads != pruner.initial[lv].heads).sum()
                 + (pruner.structures[lv].units != pruner.initial[lv].units).sum()) for lv, n in pruner.moved.items())
    # the structures follow the learned crossings: what a level removes crossed below what it keeps
    crossing = pruner.crossing()
    s = pruner.structures[0.5]
    assert crossing[1][~s.units].max() <= crossing[1][s.units].max()
    # crossing is where the gate is open with probability one half
    a, t = pruner.alpha[1].detach()[0, 0], pruner.theta[1].detach()[0, 0]
    assert float(a + (1 - crossing[1][0, 0]) * t) == pytest.approx(HALF_OPEN, abs=1e-4)


def test_after_finish_a_level_is_a_fixed_0_1_subnetwork_removable_exactly(tiny_bert):
    model = tiny_bert.train()
    pruner = pruner_for(model)
    fit(model, pruner, steps=12)
    pruner.finish()
    model.eval()
    ids = batches(1, seed=9)[0]["input_ids"]
    for level in LEVELS:
        pruner.use(level)
        with torch.no_grad():
            gated = model(input_ids=ids).logits
            again = model(input_ids=ids).logits
            assert torch.equal(gated, again)  # no sampling once the levels are cut
            small = pruner.compacted(level).eval()
            assert torch.allclose(gated, small(input_ids=ids).logits, atol=1e-5)
    model.train()  # not sampled in training mode either: the levels are fixed
    pruner.use(0.5)
    with torch.no_grad():
        model(input_ids=ids)
    assert torch.equal(pruner._gates[1].bool().cpu(), pruner.structures[0.5].units)
    assert set(pruner._gates[1].unique().tolist()) == {0.0, 1.0}


def test_with_the_embeddings_the_rank_gates_learn_and_nest_too(tiny_bert):
    from polycompress.compress.pruning.embedding_rank import factorised

    model = tiny_bert.train()
    pruner = pruner_for(model, scope="incl_embeddings")
    assert len(pruner.alpha) == 3
    fit(model, pruner, steps=12)
    pruner.finish()
    head, unit, total = costs(model)
    rank, emb_total = rank_costs(model)
    for level in LEVELS:
        assert abs(pruner.achieved(level) - level) <= (head + unit + rank) / (total + emb_total)
    for low, high in zip(LEVELS, LEVELS[1:]):
        assert not (pruner.structures[high].ranks & ~pruner.structures[low].ranks).any()
    model.eval()
    ids = batches(1, seed=9)[0]["input_ids"]
    pruner.use(0.7)
    assert torch.equal(factorised(model).gate.bool(), pruner.structures[0.7].ranks)
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, pruner.compacted(0.7).eval()(input_ids=ids).logits,
                              atol=1e-5)


def test_a_dynamic_l0_run_is_valid_planned_and_scores_every_level(real_mirror, e5_folder, tmp_path):
    import json

    from polycompress import plan
    from polycompress.config import RunConfig
    from polycompress.experiment import run

    base = dict(languages=("sw",), setting="monolingual", method="l0", scope="partial", train_size=16,
                eval_size=8, epochs=1, batch_size=2, max_length=32, perturbed=False)
    levels = (0.1, 0.3, 0.5)
    config = RunConfig(**base, sparsity=0.5, dynamic=levels)
    assert plan.plan_runs([config])[0].importance_measurements() == 1  # the ranking the gates start from
    out = run(config, tmp_path / config.run_id, progress=False, device="cpu", threads=1)
    rows = out.rows
    assert sorted(set(rows.target_sparsity)) == list(levels)
    achieved = rows.groupby("target_sparsity").achieved_sparsity.first()
    assert (achieved - list(levels)).abs().max() < 0.02
    structure = json.loads((tmp_path / config.run_id / "structure.json").read_text())
    kept = [sum(structure["levels"][str(level)]["units_kept"]) for level in levels]
    assert kept == sorted(kept, reverse=True)
    done = json.loads((tmp_path / config.run_id / "done.json").read_text())
    assert done["ranked_at"] == 0 and done["gates"]["mean_miss_last_tenth"] is not None
    assert sorted(done["gates"]["components_moved"]) == [str(x) for x in levels]
