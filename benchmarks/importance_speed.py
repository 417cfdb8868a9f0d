"""How long does one importance measurement of ``grad`` take, and how much does its ranking move
with the way it is measured? One pass of :func:`gradient_importance` over a preset's development
sentences, on the pre-trained model with a fresh classifier head (seed 0), four ways:

- ``fp32 unsorted``: float32, batches cut in the order :func:`importance_data` lists the sentences
  (method ``grad`` version 2);
- ``fp32 sorted`` and ``bf16 sorted``: batches of one language each, sorted by length within the
  language (:func:`polycompress.experiment.development_batches`), in float32 and under bf16
  autocast (version 3 runs the latter when the run's precision is bf16);
- ``bf16 unsorted``: the old batches under bf16 autocast (what precision alone changes).

Agreement with ``fp32 unsorted``: Spearman's rho of the head and of the FFN-unit scores, and the
share of the top half (heads and units together, as :func:`select` ranks them) that both keep.
Each way is timed ``--repeats`` times (median; the first pass of the process warms up first).
For scale, what batching alone moves: the top half shared between three random batchings of the
same sentences (each batch one language's, shuffled with seeds 0, 1, 2; bf16), pairwise, and
between each of them and the length-sorted batches.

    POLYCOMPRESS_DATA=../shared/data .venv/bin/python benchmarks/importance_speed.py --preset li-ds
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from scipy.stats import spearmanr
from transformers import AutoModelForTokenClassification, AutoTokenizer

from polycompress.compress.pruning.structured import gradient_importance
from polycompress.experiment import development_batches, importance_data, load_data, resolve_model
from polycompress.grid import load_grid
from polycompress.training import collate


def top_half_shared(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> float:
    """Share of the top half of ``a``'s scores (heads and units together) that ``b`` also puts there."""
    x, y = torch.cat([t.flatten() for t in a]), torch.cat([t.flatten() for t in b])
    half = len(x) // 2
    return len(set(torch.topk(x, half).indices.tolist()) & set(torch.topk(y, half).indices.tolist())) / half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="li-ds", help="a preset with a grad run (its first is used)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config = next(c for c in load_grid(args.preset).runs() if c.method == "grad")
    train_sets, dev_sets, _, _ = load_data(config)
    names = next(iter(train_sets.values())).features["ner_tags"].feature.names
    folder = resolve_model(config)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(folder, num_labels=len(names))

    listed = importance_data(config, tokenizer, dev_sets)
    size = config.batch_size
    unsorted = [collate(listed, range(i, min(i + size, len(listed))), tokenizer.pad_token_id)
                for i in range(0, len(listed), size)]
    grouped = development_batches(config, tokenizer, dev_sets)
    print(f"{args.preset}: {len(config.languages)} languages, {len(listed)} development sentences, "
          f"batches of {size}, {args.threads} threads")
    for label, batches in (("unsorted", unsorted), ("sorted", grouped)):
        print(f"  {label}: {len(batches)} batches, {sum(b['input_ids'].numel() for b in batches):,} padded pieces")

    gradient_importance(model, grouped[:1])  # warm-up
    ways = (("fp32 unsorted", unsorted, "fp32"), ("fp32 sorted", grouped, "fp32"),
            ("bf16 sorted", grouped, "bf16"), ("bf16 unsorted", unsorted, "bf16"))
    reference, scores = None, {}
    for label, batches, precision in ways:
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            heads, units = gradient_importance(model, batches, precision=precision)
            seconds.append(time.perf_counter() - start)
        scores[label] = heads, units
        if reference is None:
            reference = heads, units
        top = top_half_shared(reference, (heads, units))
        print(f"{label:14s} {statistics.median(seconds):6.1f} s (of {', '.join(f'{s:.1f}' for s in seconds)})  "
              f"rho heads {spearmanr(reference[0].flatten(), heads.flatten())[0]:.3f}, "
              f"units {spearmanr(reference[1].flatten(), units.flatten())[0]:.3f}; top half shared {top:.3f}")

    per_language = [importance_data(config, tokenizer, dev_sets, [code]) for code in config.languages]
    shuffled = []
    for seed in range(3):
        batches = []
        for data in per_language:
            order = np.random.default_rng(seed).permutation(len(data.input_ids)).tolist()
            batches += [collate(data, order[i:i + size], tokenizer.pad_token_id) for i in range(0, len(order), size)]
        shuffled.append(gradient_importance(model, batches, precision="bf16"))
    sorted_scores = scores["bf16 sorted"]
    pairs = [top_half_shared(shuffled[i], shuffled[j]) for i, j in ((0, 1), (0, 2), (1, 2))]
    against = [top_half_shared(sorted_scores, x) for x in shuffled]
    print(f"top half shared, random batchings of one language each (seeds 0-2, bf16), pairwise: "
          f"{', '.join(f'{x:.3f}' for x in pairs)}; sorted against each: {', '.join(f'{x:.3f}' for x in against)}")


if __name__ == "__main__":
    main()
