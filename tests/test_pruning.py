import pytest
import numpy as np
import torch

from polycompress.compress.pruning import METHODS, MagnitudePruner, Schedule, derived_schedule, paper_schedule, scope_parameters


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

    from polycompress.compress.pruning.rows import zeroed_rows

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


@pytest.mark.parametrize("granularity", ["per_tensor", "global"])
def test_outside_rows_prune_as_the_full_matrix_would(granularity):
    """A trimmed model whose pruner ranks the removed rows with its own (``outside``) ends with
    the weights, masks and counts of the untrimmed model pruned over its whole matrix, when
    training only feeds kept pieces and there is no weight decay (the case RunConfig allows)."""
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=7,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    full = BertForTokenClassification(config)
    keep = torch.tensor(sorted({0, 1, 2, 3, *range(10, 120, 3)}))  # 41 of 120 rows
    trimmed_config = BertConfig(**{**config.to_dict(), "vocab_size": len(keep)})
    trimmed = BertForTokenClassification(trimmed_config)
    state = full.state_dict()
    word = "bert.embeddings.word_embeddings.weight"
    trimmed.load_state_dict({**state, word: state[word][keep].clone()})
    gone = torch.ones(120, dtype=torch.bool)
    gone[keep] = False

    schedule = Schedule(start=1, end=7, frequency=2, final=0.6)
    a = MagnitudePruner(full, schedule, "incl_embeddings", granularity)
    b = MagnitudePruner(trimmed, schedule, "incl_embeddings", granularity,
                        outside={"word_embeddings.weight": state[word][gone].clone()})
    opt_a = torch.optim.AdamW(full.parameters(), lr=1e-2, weight_decay=0.0)
    opt_b = torch.optim.AdamW(trimmed.parameters(), lr=1e-2, weight_decay=0.0)
    g = torch.Generator().manual_seed(1)
    for step in range(10):
        local = torch.randint(0, len(keep), (4, 10), generator=g)  # kept pieces only
        labels = torch.randint(0, 7, (4, 10), generator=g)
        for model, opt, pruner, ids in ((full, opt_a, a, keep[local]), (trimmed, opt_b, b, local)):
            model(input_ids=ids, labels=labels).loss.backward()
            opt.step()
            opt.zero_grad()
            pruner.step(step)
    wa, wb = full.state_dict()[word], trimmed.state_dict()[word]
    assert torch.allclose(wa[keep], wb, atol=1e-6)
    assert torch.equal(a.masks[word][keep], b.masks[word])
    # the same unused entries pruned
    assert torch.equal(wa[gone].abs().flatten() == 0, b.outside[word].zero_positions(state[word][gone]))
    assert (wa[gone] != 0).any() and (wa[gone] == 0).any()  # some kept, some pruned: the ranking mattered
    ra, rb = a.report(), b.report()
    assert [(t.name, t.numel, t.zeros) for t in ra.tensors] == [(t.name, t.numel, t.zeros) for t in rb.tensors]
    assert ra.total_parameters == rb.total_parameters
    share = b.outside_report()[word]
    assert share["outside_rows"] == int(gone.sum()) and share["model_rows"] == len(keep)


def test_outside_rows_must_fit():
    from transformers import BertConfig, BertForTokenClassification

    model = BertForTokenClassification(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1,
                                                  num_attention_heads=2, intermediate_size=64))
    with pytest.raises(ValueError, match="do not fit"):
        MagnitudePruner(model, Schedule(0, 0, 1, 0.5), "incl_embeddings", outside={"word_embeddings.weight": torch.ones(5, 8)})
    with pytest.raises(ValueError, match="match 0 tensors"):
        MagnitudePruner(model, Schedule(0, 0, 1, 0.5), "partial", outside={"word_embeddings.weight": torch.ones(5, 32)})


def test_kth_smallest_is_exact_on_the_bracketed_path():
    """The sampled bracket (used on embedding-sized tensors) gives np.partition's answer, ties
    and a block of zeros included; ``sample`` small here so 100k values take that path."""
    import numpy as np

    from polycompress.compress.pruning.magnitude import kth_smallest

    rng = np.random.default_rng(0)
    x = np.round(np.abs(rng.standard_normal(100_000)), 2).astype(np.float32)
    x[:20_000] = 0.0
    for k in (1, 19_999, 20_000, 20_001, 50_000, 99_999, 100_000):
        assert kth_smallest(x, k, sample=1_000) == np.partition(x, k - 1)[k - 1], k
    with pytest.raises(ValueError, match="outside"):
        kth_smallest(x, 0)


@pytest.mark.parametrize("sample", [1_000, 1_000_000])
def test_sorted_pool_prunes_as_ranking_the_concatenation(sample):
    """Ranking a tensor with a sorted pool of outside values (counting into it) prunes what
    ranking the concatenation [tensor, pool in position order] prunes: the same threshold, the
    same ties kept (the last positions), the pool's pruned entries a prefix of its stable order;
    on the bracketed path (small ``sample``) and the partitioning one, with zeros and many ties."""
    import numpy as np

    from polycompress.compress.pruning.magnitude import OutsidePool, _keep_mask, _prune_smallest

    rng = np.random.default_rng(0)
    own = np.round(np.abs(rng.standard_normal(30_000)), 2).astype(np.float32)
    own[:3_000] = 0.0  # pruned already
    rows = torch.from_numpy(np.round(rng.standard_normal((700, 100)), 1).astype(np.float32))  # 4-bit-like ties
    pool = OutsidePool(rows, torch.float32)
    pool.prune(5_000)  # an earlier update zeroed the 5,000 smallest
    pool_now = torch.from_numpy(pool.zero_positions(rows).numpy())
    outside = rows.abs().flatten().masked_fill(pool_now, 0.0)  # the same values, in position order
    for sparsity in (0.0, 0.1, 0.2, 0.5, 0.77, 0.9, 1.0):
        n = own.size + outside.numel()
        expected = _keep_mask(torch.cat([torch.from_numpy(own), outside]), sparsity).numpy()
        keep_own, pruned = _prune_smallest([(own, False), (pool.values.copy(), True)], int(round(sparsity * n)), sample)
        assert np.array_equal(keep_own, expected[: own.size]), sparsity
        assert pruned == int((~expected[own.size:]).sum()), sparsity
        trial = OutsidePool(rows, torch.float32)
        trial.values = pool.values.copy()
        trial.prune(pruned)
        zero = trial.zero_positions(rows).numpy()
        assert np.array_equal(zero, ~expected[own.size:] | (outside.numpy() == 0)), sparsity


def _imp_training(model, attach: bool, steps: int = 12):
    """IMP of every scope tensor, embeddings included, through training.train on random sentences;
    with ``attach`` the word embeddings are kept pruned row by row (MagnitudePruner.attach)."""
    from polycompress.training import Encoded, train

    rng = np.random.default_rng(0)
    ids = [list(rng.integers(2, 120, size=int(rng.integers(4, 12)))) for _ in range(24)]
    labels = [list(rng.integers(0, 7, size=len(x))) for x in ids]
    data = Encoded(ids, labels, [list(range(len(x))) for x in ids], 0)
    pruner = METHODS["imp"](model, Schedule(start=2, end=8, frequency=3, final=0.6), "incl_embeddings", "per_tensor")
    seen = []

    def after(step: int) -> None:
        pruner.step(step)
        p = pruner.params["bert.embeddings.word_embeddings.weight"]
        mask = pruner.masks.get("bert.embeddings.word_embeddings.weight")
        seen.append(None if mask is None else bool(torch.all(p[mask == 0] == 0)))

    torch.manual_seed(1)  # dropout's draws
    result = train(model, data, epochs=steps * 4 / len(data), batch_size=4, learning_rate=1e-2, weight_decay=0.01,
                   seed=0, pad_id=0, after_step=after, progress=False, on_optimizer=pruner.attach if attach else None)
    return result, pruner, seen


def test_row_wise_embedding_pruning_gives_the_whole_matrix_masking_bit_for_bit():
    """Masking the batch's embedding rows' gradient (and zeroing AdamW's moments at updates) keeps
    every pruned entry at exactly zero and trains the very weights that multiplying the whole
    matrix by its mask after every step trains."""
    from transformers import BertConfig, BertForTokenClassification

    def fresh():
        torch.manual_seed(0)
        return BertForTokenClassification(BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2,
                                                     num_attention_heads=2, intermediate_size=64,
                                                     max_position_embeddings=64, num_labels=7))

    a, b = fresh(), fresh()
    ra, pa, seen_a = _imp_training(a, attach=False)
    rb, pb, seen_b = _imp_training(b, attach=True)
    assert pb.optimizer is not None and pa.optimizer is None
    assert [r["loss"] for r in ra.curve] == [r["loss"] for r in rb.curve]
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
    # pruned entries were zero after every step from the first update on, in both
    assert seen_b[:2] == [None, None] and all(seen_b[2:]) and seen_a == seen_b
    assert pb.report().achieved == pytest.approx(0.6, abs=1e-3)
    # and the row-wise path skipped the whole-matrix multiply: AdamW's moments of pruned entries are zero
    p = pb.params["bert.embeddings.word_embeddings.weight"]
    state = pb.optimizer.state[p]
    pruned = pb.masks["bert.embeddings.word_embeddings.weight"] == 0
    assert torch.all(state["exp_avg"][pruned] == 0) and torch.all(state["exp_avg_sq"][pruned] == 0)
