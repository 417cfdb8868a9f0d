import pytest
import torch

from polycompress.pruning import METHODS, MagnitudePruner, Schedule, derived_schedule, paper_schedule, scope_parameters


def test_cubic_schedule_values():
    s = Schedule(start=10, end=60, frequency=10, final=0.9)
    assert s.sparsity(0) == 0.0 and s.sparsity(10) == 0.0
    assert s.sparsity(60) == pytest.approx(0.9) and s.sparsity(1000) == pytest.approx(0.9)
    # s_t = s_f + (s_i - s_f)(1 - (t - t0)/(t_end - t0))^3 at the midpoint
    assert s.sparsity(35) == pytest.approx(0.9 - 0.9 * 0.5**3)
    assert s.update_steps() == [10, 20, 30, 40, 50, 60]
    values = [s.sparsity(t) for t in range(0, 80)]
    assert values == sorted(values)  # never decreases


def test_paper_table_and_derived_schedule():
    assert paper_schedule(1000, 0.5) == Schedule(100, 300, 50, 0.5)
    assert paper_schedule(20_000, 0.9).update_steps()[-1] == 2400
    with pytest.raises(ValueError, match="no schedule for 300"):
        paper_schedule(300, 0.5)
    d = derived_schedule(64, 0.9)
    assert d.start == 6 and d.end <= 32 and len(d.update_steps()) == 7


def names(params):
    return set(params)


def test_scopes(tiny_bert):
    partial = scope_parameters(tiny_bert, "partial")
    assert len(partial) == 2 * 6  # Q K V O, FFN in, FFN out per layer
    assert all(n.endswith(".weight") and ".encoder." in n for n in partial)
    full = scope_parameters(tiny_bert, "incl_embeddings")
    extra = set(full) - set(partial)
    assert {n.rsplit(".", 2)[-2] for n in extra} == {"word_embeddings", "position_embeddings", "token_type_embeddings"}
    assert not any("classifier" in n or "LayerNorm" in n or n.endswith("bias") for n in full)


@pytest.mark.parametrize("granularity", ["per_tensor", "global"])
def test_achieved_equals_target_and_kept_weights_are_the_largest(tiny_bert, granularity):
    pruner = MagnitudePruner(tiny_bert, Schedule(0, 0, 1, 0.7), "incl_embeddings", granularity)
    before = {n: p.detach().abs().clone() for n, p in pruner.params.items()}
    pruner.step(0)
    report = pruner.report()
    n = report.scope_parameters
    assert report.scope_zeros == round(0.7 * n) if granularity == "global" else True
    if granularity == "per_tensor":
        for t in report.tensors:
            assert t.zeros == round(0.7 * t.numel), t.name
        groups = [[name] for name in pruner.params]
    else:
        groups = [list(pruner.params)]
    assert report.achieved == pytest.approx(0.7, abs=1e-3)
    for group in groups:  # every kept |w| >= every pruned |w|, within each ranking group
        kept = torch.cat([before[g][pruner.masks[g].bool()] for g in group])
        pruned = torch.cat([before[g][~pruner.masks[g].bool()] for g in group])
        assert kept.min() >= pruned.max()


def test_pruned_weights_stay_zero_through_training(tiny_bert):
    schedule = Schedule(start=1, end=5, frequency=2, final=0.8)
    pruner = METHODS["imp"](tiny_bert, schedule, "partial", "per_tensor")
    opt = torch.optim.AdamW(tiny_bert.parameters(), lr=1e-2)
    ids = torch.randint(0, 120, (4, 10))
    labels = torch.randint(0, 7, (4, 10))
    previous_zeros = 0
    for step in range(12):
        tiny_bert(input_ids=ids, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
        pruner.step(step)
        zeros = pruner.report().scope_zeros
        assert zeros >= previous_zeros  # the pruned set only grows
        previous_zeros = zeros
        for name, mask in pruner.masks.items():
            assert torch.all(pruner.params[name][~mask.bool()] == 0)
    assert pruner.report().achieved == pytest.approx(0.8, abs=1e-3)
    assert [s for s, _ in pruner.history] == [1, 3, 5]


def test_dense_prunes_nothing(tiny_bert):
    pruner = METHODS["dense"](tiny_bert, None, "partial", "per_tensor")
    pruner.step(0)
    assert pruner.report().achieved == 0.0


def test_zeroed_rows_counts_rows_and_uses():
    from collections import Counter

    import torch

    from polycompress.pruning.rows import zeroed_rows

    weight = torch.ones(5, 4)
    weight[1] = 0  # a whole row pruned
    weight[2, :2] = 0  # half a row
    stats = zeroed_rows(weight, Counter({1: 1, 2: 3, 3: 4}))
    assert stats["rows"] == 3
    assert stats["rows_all_zero"] == pytest.approx(1 / 3)
    assert stats["entries_zero"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert stats["entries_zero_by_use"] == pytest.approx((1 * 1 + 0.5 * 3) / 8)
    with pytest.raises(ValueError, match="outside"):
        zeroed_rows(weight, Counter({7: 1}))
