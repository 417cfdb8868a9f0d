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

    POLYCOMPRESS_DATA=../shared/data .venv/bin/python benchmarks/importance_speed.py --preset li-ds
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from scipy.stats import spearmanr
from transformers import AutoModelForTokenClassification, AutoTokenizer

from polycompress.compress.pruning.structured import gradient_importance
from polycompress.experiment import development_batches, importance_data, load_data, resolve_model
from polycompress.grid import load_grid
from polycompress.training import collate


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
    reference = None
    for label, batches, precision in ways:
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            heads, units = gradient_importance(model, batches, precision=precision)
            seconds.append(time.perf_counter() - start)
        if reference is None:
            reference = heads, units
        both, ref = torch.cat([heads.flatten(), units.flatten()]), torch.cat([r.flatten() for r in reference])
        half = len(ref) // 2
        top = len(set(torch.topk(ref, half).indices.tolist()) & set(torch.topk(both, half).indices.tolist())) / half
        print(f"{label:14s} {statistics.median(seconds):6.1f} s (of {', '.join(f'{s:.1f}' for s in seconds)})  "
              f"rho heads {spearmanr(reference[0].flatten(), heads.flatten())[0]:.3f}, "
              f"units {spearmanr(reference[1].flatten(), units.flatten())[0]:.3f}; top half shared {top:.3f}")


if __name__ == "__main__":
    main()
