import numpy as np
import pytest
import torch

from polycompress.training import (
    IGNORE, Encoded, encode, grouped_batches, language_batches, predict, sorted_batches, train,
)


def test_first_piece_labelling(e5_folder):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(e5_folder)
    enc = encode(tok, [["Wolfgang", "Amadeus", "Mozart", "lebte"]], [[1, 2, 2, 0]], max_length=64)
    labels, first = enc.labels[0], enc.first[0]
    assert labels[0] == IGNORE and labels[-1] == IGNORE  # <s> and </s>
    assert [labels[f] for f in first] == [1, 2, 2, 0]
    assert sum(1 for x in labels if x != IGNORE) == 4  # only first pieces carry labels
    cut = encode(tok, [["Wolfgang", "Amadeus", "Mozart", "lebte"] * 10], [[0] * 40], max_length=12)
    assert cut.words_cut > 0 and len(cut.input_ids[0]) == 12


def test_grouped_batches_cover_every_sentence_once():
    lengths = np.random.default_rng(0).integers(3, 60, size=1000)
    batches = grouped_batches(lengths, 32, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 10  # similar lengths together: little padding


def test_language_batches_hold_one_language_each_and_cover_every_sentence_once():
    rng = np.random.default_rng(0)
    lengths, groups = rng.integers(3, 60, size=300), np.repeat([0, 1, 2], [100, 37, 163])
    batches = language_batches(lengths, groups, 16, np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(300))
    assert all(len(set(groups[b])) == 1 for b in batches)
    assert len({int(groups[b[0]]) for b in batches[:6]}) > 1  # languages interleaved, not in blocks


def test_sorted_batches_cover_every_sentence_once_longest_first():
    data = toy_data(50)
    batches = sorted_batches(data, 8, pad_id=1)
    assert [len(b["input_ids"]) for b in batches] == [8] * 6 + [2]
    real = [int(n) for b in batches for n in b["attention_mask"].sum(1)]
    assert real == sorted((len(x) for x in data.input_ids), reverse=True)
    # each batch is padded to its own longest: far less than to the longest of all
    assert sum(b["input_ids"].numel() for b in batches) < 50 * max(real)
    kept = sorted(tuple(row[row != IGNORE].tolist()) for b in batches for row in b["labels"])
    assert kept == sorted(tuple(x for x in labels if x != IGNORE) for labels in data.labels)


def toy_data(n=24):
    rng = np.random.default_rng(0)
    ids = [[0] + rng.integers(5, 120, size=rng.integers(3, 12)).tolist() + [2] for _ in range(n)]
    labels = [[IGNORE] + [int(i % 7) for i in x[1:-1]] + [IGNORE] for x in ids]
    first = [list(range(1, len(x) - 1)) for x in ids]
    return Encoded(ids, labels, first, 0)


def test_training_is_deterministic(tiny_bert):
    import copy

    data = toy_data()
    a, b = copy.deepcopy(tiny_bert), copy.deepcopy(tiny_bert)
    kwargs = dict(epochs=2, batch_size=8, learning_rate=1e-3, weight_decay=0.0, seed=3, pad_id=1, progress=False)
    torch.manual_seed(0)
    ra = train(a, data, **kwargs)
    torch.manual_seed(0)
    rb = train(b, data, **kwargs)
    assert [r["loss"] for r in ra.curve] == [r["loss"] for r in rb.curve]
    assert ra.steps == 6 and ra.curve[-1]["loss"] < ra.curve[0]["loss"]
    assert predict(a, data, 16, 1) == predict(b, data, 16, 1)
    assert [len(p) for p in predict(a, data, 16, 1)] == [len(f) for f in data.first]


def test_evaluation_batches_keep_every_sentence_once_within_the_budget():
    from polycompress.training import _budget_batches

    lengths = np.array([5, 88, 20, 20, 67, 3, 19, 200, 18, 17])
    order = np.argsort(-lengths, kind="stable")
    batches = _budget_batches(order, lengths, batch_size=4, max_tokens=100)
    assert np.concatenate(batches).tolist() == order.tolist()  # all, once, longest first
    assert all(len(b) <= 4 for b in batches)
    assert all(len(b) * lengths[b].max() <= 100 for b in batches if lengths[b].max() <= 100)
    assert [len(b) for b in batches][:3] == [1, 1, 1]  # 200 (over budget: alone), 88, 67
    assert [len(b) for b in _budget_batches(order, lengths, 4, None)] == [4, 4, 2]


def test_predictions_do_not_depend_on_the_evaluation_budget(tiny_bert):
    data = toy_data(40)
    assert predict(tiny_bert, data, 16, 1) == predict(tiny_bert, data, 16, 1, max_tokens=40)


def test_warmup_raises_the_learning_rate_linearly_then_decays_it(tiny_bert):
    """warmup=0.5 over 6 steps: the rate climbs over the first 3 steps, then decays linearly to
    zero as without warm-up; warmup=0 leaves run_ner's schedule as it was."""
    import copy

    kwargs = dict(epochs=2, batch_size=8, learning_rate=1e-3, weight_decay=0.0, seed=0, pad_id=1, progress=False)
    plain = train(copy.deepcopy(tiny_bert), toy_data(), **kwargs)
    warm = train(copy.deepcopy(tiny_bert), toy_data(), warmup=0.5, **kwargs)
    steps = len(plain.curve)
    decay = [max(0.0, 1 - (s + 1) / steps) for s in range(steps)]
    assert [c["lr"] for c in plain.curve] == pytest.approx([1e-3 * d for d in decay])
    w = int(0.5 * steps)
    ramp = [min(1.0, (s + 2) / w) for s in range(steps)]  # the rate after step s is the one of step s + 1
    assert [c["lr"] for c in warm.curve] == pytest.approx([1e-3 * r * d for r, d in zip(ramp, decay)])
    with pytest.raises(ValueError, match="warmup"):
        train(copy.deepcopy(tiny_bert), toy_data(), warmup=1.0, **kwargs)
