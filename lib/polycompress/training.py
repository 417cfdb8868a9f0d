"""Fine-tuning a token classifier: sub-word alignment, length-grouped batches, the loop.

Labels go on the first sub-word piece of each word; other pieces get -100 and are ignored by
the loss (as in Hugging Face's ``run_ner.py``). Batches group sentences of similar length
(within shuffled windows of 50 batches) because padding, not arithmetic, dominates the cost
of short NER sentences on a CPU.

Device and precision: a run's ``precision`` (part of its config) says how its passes compute:
float32, or under autocast in bfloat16 (CPU or GPU) or float16 (CUDA, with a gradient scaler).
Weights, the optimizer's state and the pruning masks stay float32. :func:`check_precision`
refuses what a device cannot do. The CUDA path ran once on a borrowed GPU
(``benchmarks/device_check.py``; README, "Devices"); CI has no GPU, so the float16 and bfloat16
branches are exercised on the CPU by ``tests/test_device.py``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .config import PRECISIONS

IGNORE = -100
GROUP_WINDOW = 50  # batches per window within which sentences are sorted by length
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` if torch sees a GPU, else ``cpu``; ``cuda`` without one is an error."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, not {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no GPU "
                           f"(torch {torch.__version__}; a CPU build has none)")
    return device


def check_precision(device: str, precision: str) -> str | None:
    """Fail if ``device`` cannot compute in ``precision``; return a warning where it can, but
    slowly (bf16 on a CPU without bf16 instructions: oneDNN emulates it, slower than fp32).

    fp16 is refused on a CPU: autocast would run it, but without a reason to (no speed, less
    range than bf16). A GPU without bf16 (before Ampere) is refused bf16 rather than silently
    given fp16, since the precision is part of the run id."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if device == "cpu":
        if precision == "fp16":
            raise ValueError("precision 'fp16' is for CUDA; on a CPU use 'bf16' or 'fp32'")
        if precision == "bf16" and not native_bf16():
            return ("precision 'bf16' on a CPU without bf16 instructions (avx512_bf16 or AMX): "
                    "emulated, slower than fp32; the results are the same arithmetic")
    elif precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"this GPU ({torch.cuda.get_device_name()}) has no bf16: use precision 'fp16' or 'fp32'")
    return None


def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (avx512_bf16 or AMX tiles): where it does, a
    2048 x 2048 bf16 GEMM ran 4.3x as fast as the fp32 one here (benchmarks/train_speed.py's peaks,
    843 vs 198 GFLOP/s at 2 threads)."""
    cpu = torch.cpu
    return any(bool(getattr(cpu, name, lambda: False)()) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager:
    """Autocast for ``precision`` on ``device`` (a no-op for fp32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def to_device(batch: dict[str, torch.Tensor], device: str) -> dict[str, torch.Tensor]:
    if device == "cpu":
        return batch
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@dataclass
class Encoded:
    """Sentences as model inputs. ``labels`` has IGNORE off first pieces; ``first`` maps each
    word to the index of its first piece (-1 if the word was cut by ``max_length``)."""

    input_ids: list[list[int]]
    labels: list[list[int]]
    first: list[list[int]]
    words_cut: int  # words that lost their label because the sentence was too long

    def __len__(self) -> int:
        return len(self.input_ids)


def encode(tokenizer, tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[int]], max_length: int) -> Encoded:
    """Tokenise pre-split sentences and align word tags to first pieces."""
    enc = tokenizer(list(map(list, tokens)), is_split_into_words=True, truncation=True, max_length=max_length)
    input_ids, labels, firsts, cut = [], [], [], 0
    for i, word_tags in enumerate(tags):
        word_ids = enc.word_ids(i)
        lab = [IGNORE] * len(word_ids)
        first = [-1] * len(word_tags)
        previous = None
        for pos, w in enumerate(word_ids):
            if w is not None and w != previous:
                lab[pos] = word_tags[w]
                first[w] = pos
            previous = w
        cut += sum(1 for f in first if f < 0)
        input_ids.append(enc["input_ids"][i])
        labels.append(lab)
        firsts.append(first)
    return Encoded(input_ids, labels, firsts, cut)


def grouped_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices in batches of similar length: shuffle, sort within windows, shuffle batches."""
    order = rng.permutation(len(lengths))
    lengths = np.asarray(lengths)
    batches = []
    window = batch_size * GROUP_WINDOW
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def language_batches(lengths: Sequence[int], groups: Sequence[int], batch_size: int,
                     rng: np.random.Generator) -> list[np.ndarray]:
    """:func:`grouped_batches` within each group (a training language), then all batches shuffled:
    every batch holds one group's sentences."""
    groups = np.asarray(groups)
    batches = []
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        batches += [members[b] for b in grouped_batches([lengths[i] for i in members], batch_size, rng)]
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(data: Encoded, index: Sequence[int], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest sentence: input_ids, attention_mask, labels of shape (B, L)."""
    longest = max(len(data.input_ids[i]) for i in index)
    ids = torch.full((len(index), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(index), longest), dtype=torch.long)
    labels = torch.full((len(index), longest), IGNORE, dtype=torch.long)
    for row, i in enumerate(index):
        n = len(data.input_ids[i])
        ids[row, :n] = torch.tensor(data.input_ids[i])
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(data.labels[i])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def sorted_batches(data: Encoded, batch_size: int, pad_id: int) -> list[dict[str, torch.Tensor]]:
    """All of ``data`` in batches of ``batch_size`` (the last may be smaller), longest sentences
    first (a stable sort): each batch is padded to about its own length, not to the longest of a
    random draw (on the default's 800 development sentences 16k padded pieces instead of 43k)."""
    order = np.argsort(-np.array([len(x) for x in data.input_ids]), kind="stable").tolist()
    return [collate(data, order[i:i + batch_size], pad_id) for i in range(0, len(order), batch_size)]


@dataclass
class TrainResult:
    curve: list[dict]  # one row per optimizer step: step, epoch, loss, lr, sparsity, seconds
    steps: int
    seconds: float
    tokens: int  # real (non-padding) pieces processed
    padded_tokens: int  # pieces processed including padding

    def then(self, more: "TrainResult") -> "TrainResult":
        """This training followed by ``more`` (a second fine-tuning): steps and seconds of the
        curve continue where this one ended."""
        last = self.curve[-1] if self.curve else {"seconds": 0.0, "epoch": 0.0}
        curve = self.curve + [{**r, "step": r["step"] + self.steps, "seconds": r["seconds"] + last["seconds"],
                               "epoch": r["epoch"] + last["epoch"]} for r in more.curve]
        return TrainResult(curve, self.steps + more.steps, self.seconds + more.seconds, self.tokens + more.tokens,
                           self.padded_tokens + more.padded_tokens)


def total_steps(n_sentences: int, batch_size: int, epochs: float) -> int:
    return max(1, math.ceil(epochs * math.ceil(n_sentences / batch_size)))


def train(
    model: nn.Module,
    data: Encoded,
    *,
    epochs: float,
    batch_size: int,
    learning_rate: float,
    weight_decay: float,
    seed: int,
    pad_id: int,
    after_step: Callable[[int], None] | None = None,
    sparsity: Callable[[], float] | None = None,
    penalty: Callable[[], torch.Tensor] | None = None,
    batch_groups: Sequence[int] | None = None,
    before_batch: Callable[[int], None] | None = None,
    extra_optimizers: Sequence[torch.optim.Optimizer] = (),
    device: str = "cpu",
    precision: str = "fp32",
    progress: bool = True,
    loss_fn: Callable[[nn.Module, dict[str, torch.Tensor]], torch.Tensor] | None = None,
    warmup: float = 0.0,
    on_optimizer: Callable[[torch.optim.Optimizer], None] | None = None,
) -> TrainResult:
    """AdamW with linear decay to zero and, by default, no warm-up (run_ner's defaults).

    ``warmup`` (a fraction of the steps) scales the learning rate by ``(step + 1) / w`` over the
    first ``w = int(warmup * steps)`` steps: on MasakhaNER at 2e-4 without it a seed can settle in
    the all-O solution and never leave it in a short budget (book/awobade).

    ``after_step(step)`` runs after every optimizer step: pruning methods hook in there.
    ``penalty()``, if given, is added to each batch's loss (L0 gates' sparsity term); the
    curve's ``loss`` is the task loss alone. ``batch_groups`` (one id per sentence), if given, makes
    every batch one group's (:func:`language_batches`), and ``before_batch(group)`` runs before
    its forward pass (per-language subnetworks hook in there).

    ``device`` is where ``model`` already is; batches are moved there. ``precision`` (see
    :func:`check_precision`) puts the forward pass and loss under autocast; with fp16 the loss is
    scaled so that small gradients do not underflow. ``extra_optimizers`` are the ones that
    ``after_step`` steps itself (the L0 gates'): with fp16 their gradients are unscaled too, and
    dropped for a step whose gradients overflowed, as the scaler skips the main optimizer then.
    ``on_optimizer(optimizer)``, if given, is called with the optimizer before the first step
    (:meth:`polycompress.compress.pruning.MagnitudePruner.attach`).
    ``loss_fn(model, batch)``, if given, is the loss instead of the model's own (a distillation
    loss, :mod:`polycompress.compress.distillation`); ``batch`` is on ``device``.
    """
    if before_batch is not None and batch_groups is None:
        raise ValueError("before_batch needs batch_groups: it is called with the group of each batch")
    steps = total_steps(len(data), batch_size, epochs)
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    # fused: one kernel over all tensors, measured 0.023 s vs 0.131 s per step on 53M
    # parameters here (benchmarks/train_speed.py); same update rule, float rounding differs
    optimizer = torch.optim.AdamW(groups, lr=learning_rate, fused=True)
    if on_optimizer is not None:  # IMP keeps the word embeddings pruned through its moments
        on_optimizer(optimizer)
    # fp16 needs loss scaling (its range underflows small gradients); bf16 and fp32 do not
    scaler = torch.amp.GradScaler(device) if precision == "fp16" else None
    if not 0.0 <= warmup < 1.0:
        raise ValueError(f"warmup is a fraction of the steps in [0, 1), got {warmup}")
    warm = int(warmup * steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (min(1.0, (s + 1) / warm) if warm else 1.0) * max(0.0, 1.0 - s / steps))
    rng = np.random.default_rng(seed)
    lengths = [len(x) for x in data.input_ids]
    per_epoch = math.ceil(len(data) / batch_size)
    model.train()
    curve, tokens, padded = [], 0, 0
    start = time.perf_counter()
    bar = tqdm(total=steps, desc="training", unit="step", disable=not progress, leave=False)
    step = 0
    while step < steps:
        epoch = (grouped_batches(lengths, batch_size, rng) if batch_groups is None
                 else language_batches(lengths, batch_groups, batch_size, rng))
        for index in epoch:
            if step >= steps:
                break
            if before_batch is not None:
                before_batch(int(batch_groups[index[0]]))
            batch = collate(data, index, pad_id)
            with autocast(device, precision):
                inputs = to_device(batch, device)
                loss = (model(**inputs).loss if loss_fn is None else loss_fn(model, inputs)).float()
            total = loss + penalty() if penalty is not None else loss
            loss = loss.detach()
            if scaler is None:
                total.backward()
                optimizer.step()
            else:
                scaler.scale(total).backward()
                for extra in extra_optimizers:
                    _unscale_or_drop(scaler, extra)
                scaler.step(optimizer)  # skipped if a gradient overflowed
                scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if after_step is not None:
                after_step(step)
            tokens += int(batch["attention_mask"].sum())
            padded += batch["attention_mask"].numel()
            curve.append({"step": step, "epoch": step / per_epoch, "loss": loss.item(), "lr": scheduler.get_last_lr()[0],
                          "sparsity": sparsity() if sparsity else 0.0, "seconds": time.perf_counter() - start})
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{curve[-1]['loss']:.3f}")
    bar.close()
    return TrainResult(curve, steps, time.perf_counter() - start, tokens, padded)


def _unscale_or_drop(scaler: torch.amp.GradScaler, optimizer: torch.optim.Optimizer) -> None:
    """Unscale ``optimizer``'s gradients; if any is not finite, drop them all (set to None), so
    that its own ``step()`` leaves those parameters alone, as ``scaler.step`` does for the main one."""
    scaler.unscale_(optimizer)
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if grads and not all(bool(torch.isfinite(g).all()) for g in grads):
        for group in optimizer.param_groups:
            for p in group["params"]:
                p.grad = None


def _budget_batches(order: np.ndarray, lengths: np.ndarray, batch_size: int,
                    max_tokens: int | None) -> list[np.ndarray]:
    """``order`` (longest first) cut into consecutive batches of at most ``batch_size``
    sentences and, if ``max_tokens``, at most that many padded pieces (never empty: a sentence
    longer than the budget goes alone)."""
    if max_tokens is None:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    batches, start = [], 0
    while start < len(order):
        longest = int(lengths[order[start]])  # the first of a batch is its longest
        n = max(1, min(batch_size, max_tokens // max(longest, 1)))
        batches.append(order[start : start + n])
        start += n
    return batches


@torch.inference_mode()
def predict(model: nn.Module, data: Encoded, batch_size: int, pad_id: int, device: str = "cpu",
            precision: str = "fp32", max_tokens: int | None = None) -> list[list[int]]:
    """Predicted label id per *word* (first piece's argmax); words cut by length get -1.
    ``model`` is on ``device``; ``precision`` as in :func:`train`. Sentences go longest first in
    batches of ``batch_size``; with ``max_tokens``, also of at most that many padded pieces (a
    batch's count times its longest sentence): a few long sentences then no longer pad a whole
    batch of short ones (2.6x the real pieces in 64-sentence batches of PAN-X test sentences)."""
    model.eval()
    lengths = np.array([len(x) for x in data.input_ids])
    order = np.argsort(-lengths, kind="stable")
    out: list[list[int]] = [[] for _ in range(len(data))]
    for index in _budget_batches(order, lengths, batch_size, max_tokens):
        batch = collate(data, index, pad_id)
        batch.pop("labels")
        with autocast(device, precision):
            # (B, L) on the CPU: indexing a GPU tensor one word at a time would sync every time
            logits = model(**to_device(batch, device)).logits.argmax(-1).cpu()
        for row, i in enumerate(index):
            out[i] = [int(logits[row, f]) if f >= 0 else -1 for f in data.first[i]]
    return out
