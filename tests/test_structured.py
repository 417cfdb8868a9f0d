"""Structured pruning (method ``grad``): importance, selection to a target, masks, physical removal."""

import pytest
import torch

from polycompress.compress.pruning import GradientPruner, Schedule
from polycompress.compress.pruning.compact import compact, save
from polycompress.compress.pruning.structured import (
    Structure, costs, encoder_layers, gradient_importance, install_gates, pruned_share, select, structure_masks,
)


def batches(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randint(5, 120, (4, 12), generator=g)
        out.append({"input_ids": ids, "attention_mask": torch.ones_like(ids),
                    "labels": torch.randint(0, 7, (4, 12), generator=g)})
    return out


def test_importance_in_bf16_ranks_as_in_fp32_and_leaves_the_model_as_it_was(tiny_bert):
    """Under bf16 autocast (a bf16 run's importance passes) the scores are float32 and close to
    fp32's; weights, their gradients and the training flag are untouched."""
    model = tiny_bert.train()
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    fp32 = gradient_importance(model, batches(2))
    bf16 = gradient_importance(model, batches(2), precision="bf16")
    for a, b in zip(fp32, bf16):
        assert b.dtype == torch.float32
        assert torch.allclose(a, b, atol=0.05), (a - b).abs().max()
    assert model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(p, weights[n]) for n, p in model.named_parameters())
    with pytest.raises(ValueError, match="precision"):
        gradient_importance(model, batches(1), precision="fp8")


def test_head_importance_is_the_gradient_of_a_gate(tiny_bert):
    """|dL/dg| at g = 1 equals |sum of head output * dL/d(head output)| (Michel et al.)."""
    model = tiny_bert.eval()
    data = batches(1)
    heads, units = gradient_importance(model, data)
    assert torch.allclose(heads.norm(dim=1), torch.ones(2)) and torch.allclose(units.norm(dim=1), torch.ones(2))

    # the same quantity by hand for layer 0: capture the heads' outputs and their gradient
    layer = encoder_layers(model)[0]
    captured = {}

    def keep(module, args):
        args[0].retain_grad()
        captured["x"] = args[0]

    handle = layer.attention.output.dense.register_forward_pre_hook(keep)
    model(**data[0]).loss.backward()
    handle.remove()
    x, g = captured["x"], captured["x"].grad  # (B, L, H*h)
    manual = (x * g).reshape(*x.shape[:2], 2, -1).sum(dim=(0, 1, 3)).abs()
    assert torch.allclose(heads[0], manual / manual.norm(), atol=1e-5)
    model.zero_grad()


@pytest.mark.parametrize("target", [0.2, 0.5, 0.7])
def test_selection_reaches_the_target_share_of_encoder_parameters(tiny_bert, target):
    heads, units = gradient_importance(tiny_bert, batches())
    structure = select(tiny_bert, heads, units, target)
    head, unit, total = costs(tiny_bert)
    # within one head and one unit of the target (whole structures are removed)
    assert abs(pruned_share(tiny_bert, structure) - target) <= (head + unit) / total
    assert (structure.heads.sum(1) >= 1).all() and (structure.units.sum(1) >= 1).all()
    # lower-importance units go first: every pruned unit scores at most the best kept one
    assert units[~structure.units].max() <= units[structure.units].max()


def test_pruned_structures_stay_pruned_as_the_target_rises(tiny_bert):
    heads, units = gradient_importance(tiny_bert, batches())
    first = select(tiny_bert, heads, units, 0.3)
    heads2, units2 = gradient_importance(tiny_bert, batches(seed=1))
    second = select(tiny_bert, heads2, units2, 0.6, first)
    assert not (second.units & ~first.units).any() and not (second.heads & ~first.heads).any()
    with pytest.raises(ValueError, match="exceeds"):
        select(tiny_bert, heads, units, 0.999)


def test_removed_model_is_smaller_and_predicts_exactly_as_the_masked_one(tiny_bert, tmp_path):
    from transformers import AutoModelForTokenClassification

    model = tiny_bert.eval()
    heads, units = gradient_importance(model, batches())
    structure = select(model, heads, units, 0.5)
    with torch.no_grad():
        for param, mask in structure_masks(model, structure).values():
            param.mul_(mask)
    small = compact(model, structure).eval()
    head, unit, _ = costs(model)
    removed = int((~structure.heads).sum()) * head + int((~structure.units).sum()) * unit
    assert sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in small.parameters()) == removed
    ids = batches(1)[0]["input_ids"]
    with torch.no_grad():
        masked, compacted = model(input_ids=ids).logits, small(input_ids=ids).logits
    assert torch.equal(masked.argmax(-1), compacted.argmax(-1))
    assert torch.allclose(masked, compacted, atol=1e-5)

    folder = save(small, tmp_path / "small")
    assert (folder / "modeling_pruned_bert.py").is_file()
    loaded = AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=True).eval()
    assert loaded.config.layer_heads == [int(x) for x in structure.heads.sum(1)]
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, compacted, atol=1e-6)


def test_gradient_pruner_prunes_on_schedule_and_holds_zeros(tiny_bert):
    model = tiny_bert.train()
    schedule = Schedule(start=2, end=6, frequency=2, final=0.5)
    pruner = GradientPruner(model, schedule, importance_batches=lambda: batches(2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for step, batch in enumerate(batches(10, seed=3)):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        pruner.step(step)
    assert [s for s, _ in pruner.history] == [2, 4, 6]
    head, unit, total = costs(model)
    assert abs(pruner.current - 0.5) <= (head + unit) / total
    # pruned structures are exactly zero after training went on (Adam's momentum included)
    for param, mask in pruner.masks.values():
        assert (param.detach()[mask == 0] == 0).all()
    assert pruner.report().achieved >= pruner.current


def test_structured_runs_of_the_embeddings_have_no_pool_and_grad_needs_batches(tiny_bert):
    from polycompress.config import RunConfig

    for method in ("grad", "l0"):
        # the embeddings' rank (tests/test_embedding_rank.py): no pool to choose
        rank = RunConfig(method=method, sparsity=0.5, scope="incl_embeddings", vocab_languages=("en",))
        assert "embedding_pool" not in rank.canonical()
    with pytest.raises(ValueError, match="development batches"):
        GradientPruner(tiny_bert, Schedule(1, 2, 1, 0.5))
    assert Structure.full(tiny_bert).heads.shape == (2, 2)


def test_hard_concrete_gates_match_their_open_probability():
    from polycompress.compress.pruning.l0 import HardConcrete

    torch.manual_seed(0)
    gates = HardConcrete((3,))
    with torch.no_grad():
        gates.log_alpha.copy_(torch.tensor([-2.0, 0.0, 2.0]))
    draws = torch.stack([gates.sample() for _ in range(20000)])  # (draws, 3)
    assert draws.min() >= 0 and draws.max() <= 1
    assert (draws == 0).any() and (draws == 1).any()  # the stretch makes exact 0 and 1 reachable
    assert torch.allclose((draws > 0).float().mean(0), gates.open_probability().detach(), atol=0.02)
    # deterministic gates close as many as the distribution expects, lowest log_alpha first
    expected_closed = round(float((1 - gates.open_probability()).detach().sum()))
    z = gates.deterministic()
    assert int((z == 0).sum()) == expected_closed and (expected_closed == 0 or z[0] == 0)


def test_l0_pruner_reaches_its_target_and_leaves_a_plain_masked_model(tiny_bert):
    from polycompress.compress.pruning import L0Pruner

    torch.manual_seed(0)
    model = tiny_bert.train()
    data = batches(8, seed=4)
    steps = 120
    pruner = L0Pruner(model, Schedule(start=12, end=60, frequency=8, final=0.5))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(steps):
        loss = model(**data[step % 8]).loss + pruner.penalty()
        loss.backward()
        assert pruner.head_gates.log_alpha.grad is not None  # the sparsity term trains the gates
        optimizer.step()
        optimizer.zero_grad()
        pruner.step(step)
    assert abs(pruner.current - 0.5) < 0.05  # expected sparsity while training
    # the structure was fixed once the schedule had ended near the target, and stayed fixed
    assert pruner.frozen_at is not None and 60 <= pruner.frozen_at < steps - 1
    for param, mask in pruner.masks.values():
        assert (param.detach()[mask == 0] == 0).all()
    pruner.finish()
    head, unit, total = costs(model)
    assert abs(pruner.current - 0.5) <= (head + unit) / total  # deterministic: whole heads/units
    assert not model.bert.encoder.layer[0].attention.output.dense._forward_pre_hooks  # gates gone
    model.eval()
    small = compact(model, pruner.structure).eval()
    ids = data[0]["input_ids"]
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, small(input_ids=ids).logits, atol=1e-5)
    assert pruner.report().achieved >= pruner.current - 1e-9


def test_non_shared_subnetworks_one_per_language_each_at_its_target(tiny_bert):
    """Li et al.'s non-shared setting: a structure per language from that language's batches,
    applied by gates (weights untouched), equal to that language's physically smaller model."""
    import copy

    from polycompress.compress.pruning.subnetworks import LanguageGradientPruner

    model = tiny_bert.train()
    dev = {"xx": batches(2, seed=11), "yy": batches(2, seed=12)}
    pruner = LanguageGradientPruner(model, Schedule(start=1, end=5, frequency=2, final=0.5),
                                    importance_batches=lambda code: dev[code], languages=["xx", "yy"])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # structures only: weights must not move
    for step, batch in enumerate(batches(8, seed=5)):
        pruner.use_group(step % 2)
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        pruner.step(step)
    head, unit, total = costs(model)
    for code in ("xx", "yy"):
        assert abs(pruner.achieved(code) - 0.5) <= (head + unit) / total
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())  # gates, not zeroed weights
    # what no language uses is at most what either drops
    shared = pruner.shared_structure()
    assert pruned_share(model, shared) <= min(pruner.achieved(c) for c in ("xx", "yy")) + 1e-12
    assert pruner.report().achieved <= 0.5 + (head + unit) / total
    model.eval()
    ids = batches(1, seed=9)[0]["input_ids"]
    for code in ("xx", "yy"):
        pruner.use(code)
        with torch.no_grad():
            gated = model(input_ids=ids).logits
        for handle in pruner.handles:  # the compact copy must compute without the gates
            handle.remove()
        small = compact(copy.deepcopy(model), pruner.structures[code]).eval()
        pruner.handles = install_gates(model, lambda i: pruner._gates[0][i], lambda i: pruner._gates[1][i])
        with torch.no_grad():
            assert torch.allclose(gated, small(input_ids=ids).logits, atol=1e-5)


def test_a_language_gets_no_gradient_through_heads_its_subnetwork_dropped(tiny_bert):
    from polycompress.compress.pruning.subnetworks import LanguageGradientPruner

    model = tiny_bert.train()
    pruner = LanguageGradientPruner(model, Schedule(0, 0, 1, 0.5), importance_batches=lambda code: batches(1, seed=3),
                                    languages=["xx", "yy"])
    pruner.step(0)
    pruner.use("xx")
    model(**batches(1, seed=4)[0]).loss.backward()
    dropped = ~pruner.structures["xx"].units[0]
    grad = model.bert.encoder.layer[0].intermediate.dense.weight.grad  # (units, d)
    assert dropped.any() and (grad[dropped] == 0).all() and (grad[~dropped] != 0).any()


def test_one_threshold_over_heads_and_units_decides_the_split(tiny_bert):
    """Li et al.'s rule: one ranking of heads and FFN units together. With every head scoring above
    every unit, 30% of the encoder comes from units alone; the equal-share variant takes heads too.
    Every removed component scores at most every kept one that could have been removed."""
    layers, n_heads = 2, 2
    n_units = encoder_layers(tiny_bert)[0].intermediate.dense.out_features
    heads = torch.ones(layers, n_heads)
    units = torch.linspace(0.01, 0.5, layers * n_units).reshape(layers, n_units)
    structure = select(tiny_bert, heads, units, 0.3)
    assert structure.heads.all() and not structure.units.all()
    head, unit, total = costs(tiny_bert)
    assert abs(pruned_share(tiny_bert, structure) - 0.3) <= head / total
    removable = structure.units & (structure.units.sum(1, keepdim=True) > 1)
    assert units[~structure.units].max() <= units[removable].min()
    equal = select(tiny_bert, heads, units, 0.3, allocation="equal")
    assert not equal.heads.all()
    with pytest.raises(ValueError, match="allocation"):
        select(tiny_bert, heads, units, 0.3, allocation="per_layer")


def test_an_update_to_target_zero_measures_nothing_and_changes_nothing(tiny_bert, monkeypatch):
    """The schedule's first update has target 0: selection would keep everything whatever the
    scores, so no importance pass is made (a real run gives the same predictions and losses
    either way: checked on a tiny real sw+yo run, shared and non-shared)."""
    from polycompress.compress.pruning import structured, subnetworks

    calls = []
    real = structured.gradient_importance

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(structured, "gradient_importance", counted)
    monkeypatch.setattr(subnetworks, "gradient_importance", counted)
    pruner = GradientPruner(tiny_bert, Schedule(0, 4, 2, 0.5), importance_batches=lambda: batches(1))
    pruner.update(0.0)
    assert not calls and pruner.current == 0.0 and pruner.structure.heads.all() and pruner.structure.units.all()
    pruner.update(0.3)
    assert len(calls) == 1 and pruner.current > 0
    own = subnetworks.LanguageGradientPruner(tiny_bert, Schedule(0, 4, 2, 0.5), importance_batches=lambda code: batches(1),
                                             languages=["xx", "yy"])
    own.update(0.0)
    assert len(calls) == 1
