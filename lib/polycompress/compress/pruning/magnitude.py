"""Iterative magnitude pruning (IMP) during fine-tuning, as Ogueji et al. (2022) use it.

Scopes (which weights may be pruned):

- ``partial``: every ``nn.Linear`` weight of the encoder (attention Q/K/V/output and both FFN
  matrices); not biases, not LayerNorm, not the embeddings;
- ``incl_embeddings``: those plus the word, position and token-type embedding matrices.

The new classification head is never pruned: it has 384 x 7 weights, is trained from scratch,
and the paper prunes the pre-trained model, not the task layer.

Granularity ``per_tensor`` (the default, as TensorFlow's model_pruning that the paper used)
prunes each tensor to the target sparsity; ``global`` ranks all weights of the scope together.
Exactly ``round(s * n)`` weights are pruned (ties broken by position), so achieved = target.
Pruned weights are set to zero after every optimizer step, so they stay exactly zero.

``outside`` ranks weights the model does not hold together with a tensor of its own: the
word-embedding rows a vocabulary-trimmed model lacks (:func:`polycompress.encoders.vocab.removed_rows`),
so that the embedding sparsity is over the full matrix as in the paper while only the rows the
corpora use are trained. Those rows are fixed (no gradient reaches them in the full model
either), so only their magnitudes and their mask are kept; the report counts them. This is the
pruning of the full matrix, without holding and updating 167k unused rows in the optimizer
(tests/test_pruning.py checks the masks against pruning the untrimmed matrix).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .report import SparsityReport, TensorSparsity
from .schedule import Schedule

EMBEDDING_SUFFIXES = ("word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight")


def scope_parameters(model: nn.Module, scope: str) -> dict[str, nn.Parameter]:
    """Name -> parameter of every weight in ``scope`` (see the module docstring)."""
    base = getattr(model, model.base_model_prefix, model)
    prefix = model.base_model_prefix + "." if base is not model else ""
    out: dict[str, nn.Parameter] = {}
    for name, module in base.named_modules():
        if isinstance(module, nn.Linear) and ".encoder." in f".{name}.":
            out[prefix + name + ".weight"] = module.weight
    if scope == "incl_embeddings":
        for name, param in base.named_parameters():
            if name.endswith(EMBEDDING_SUFFIXES):
                out[prefix + name] = param
    elif scope != "partial":
        raise ValueError(f"unknown scope {scope!r}")
    if not out:
        raise ValueError(f"no prunable weights found in {type(model).__name__}")
    return out


def kth_smallest(x: np.ndarray, k: int, sample: int = 1_000_000) -> float:
    """The ``k``-th smallest value of ``x`` (1-based), exactly.

    For large ``x`` (a full embedding matrix: 96M entries) a strided sample of about ``sample``
    values brackets the answer, one pass counts the values below the bracket, and only the few
    inside it are partitioned: about 0.2 s instead of 0.8 s for ``np.partition`` of everything
    (one CPU thread). Where the bracket misses (it cannot for a sample of the same distribution,
    but nothing depends on that) the whole array is partitioned.
    """
    n = x.size
    if not 1 <= k <= n:
        raise ValueError(f"k = {k} outside 1..{n}")
    if n < 4 * sample:
        return np.partition(x.reshape(-1), k - 1)[k - 1]
    flat = x.reshape(-1)
    probe = flat[:: n // sample]
    m = probe.size
    margin = max(int(0.002 * m), 50)  # quantile error of a 1M sample is ~0.05%: 4x that, or 50 values
    i = k * m // n
    lo_i, hi_i = max(i - margin, 0), min(i + margin, m - 1)
    part = np.partition(probe, [lo_i, hi_i])
    lo, hi = part[lo_i], part[hi_i]
    below = int(np.count_nonzero(flat < lo))
    band = flat[(flat >= lo) & (flat <= hi)]
    r = k - below
    if not 1 <= r <= band.size:
        return np.partition(flat, k - 1)[k - 1]
    return np.partition(band, r - 1)[r - 1]


def _keep_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Boolean mask (flat) keeping the ``n - round(sparsity * n)`` largest scores; among scores
    equal to the threshold the later positions are kept.

    The threshold is the k-th smallest score, found by selection rather than ``topk``: on the
    96M entries of a full embedding matrix (one CPU thread, measured once on an idle machine)
    ``topk`` of the kept half took 5.9 s and ``torch.kthvalue`` 1.4-2.9 s, numpy's introselect
    (``np.partition``) 0.1-0.8 s and :func:`kth_smallest` about 0.3 s: numpy on the CPU,
    ``kthvalue`` elsewhere.
    """
    flat = scores.detach().flatten()
    n = flat.numel()
    n_prune = int(round(sparsity * n))
    if n_prune == 0:
        return torch.ones(n, dtype=torch.bool, device=flat.device)
    if flat.device.type == "cpu" and flat.dtype in (torch.float32, torch.float64):
        threshold = torch.as_tensor(kth_smallest(flat.numpy(), n_prune))
    else:
        threshold = flat.kthvalue(n_prune).values
    keep = flat > threshold
    missing = (n - n_prune) - int(torch.count_nonzero(keep))  # ties at the threshold that must stay
    if missing > 0:
        ties = (flat == threshold).nonzero().flatten()
        keep[ties[-missing:]] = True
    return keep


class MagnitudePruner:
    """Gradual magnitude pruning: call :meth:`step` after every optimizer step."""

    def __init__(self, model: nn.Module, schedule: Schedule, scope: str = "partial", granularity: str = "per_tensor",
                 outside: dict[str, torch.Tensor] | None = None, **context):
        self.schedule = schedule
        self.scope = scope
        self.granularity = granularity
        self.params = scope_parameters(model, scope)
        # name of a scope tensor -> |weights| (flat) of rows ranked with it but not in the model;
        # ``outside`` keys are name suffixes ("word_embeddings.weight"); pruned ones are set to 0
        self.outside: dict[str, torch.Tensor] = {}
        for suffix, rows in (outside or {}).items():
            match = [n for n in self.params if n.endswith(suffix)]
            if len(match) != 1:
                raise ValueError(f"outside rows for {suffix!r} match {len(match)} tensors of scope {scope!r}")
            p = self.params[match[0]]
            if rows.dim() != 2 or rows.shape[1:] != p.shape[1:]:
                raise ValueError(f"outside rows of shape {tuple(rows.shape)} do not fit {match[0]} {tuple(p.shape)}")
            self.outside[match[0]] = rows.detach().abs().flatten().to(device=p.device, dtype=p.dtype)
        # 1.0 keeps, 0.0 prunes; stored in the weights' dtype so that the per-step multiply
        # needs no conversion (a bool mask would be cast to float on every step)
        self.masks: dict[str, torch.Tensor] = {}
        self.current = 0.0
        self.total_parameters = sum(p.numel() for p in model.parameters()) + sum(
            o.numel() for o in self.outside.values())
        self.history: list[tuple[int, float]] = []  # (step, target sparsity) at each update

    def _scores(self, name: str, p: torch.Tensor) -> torch.Tensor:
        """|weights| of tensor ``name`` (flat), followed by those of its outside rows."""
        own = p.detach().abs().flatten()
        return torch.cat([own, self.outside[name]]) if name in self.outside else own

    def _set(self, name: str, p: torch.Tensor, keep: torch.Tensor) -> None:
        """Store the mask of ``name`` from ``keep`` (its scores' order); zero pruned outside rows."""
        self.masks[name] = keep[: p.numel()].view_as(p).to(p.dtype)
        if name in self.outside:
            self.outside[name].mul_(keep[p.numel():])

    @torch.no_grad()
    def update_masks(self, sparsity: float) -> None:
        """Recompute the masks at ``sparsity`` from the current weight magnitudes."""
        if self.granularity == "per_tensor":
            for name, p in self.params.items():
                self._set(name, p, _keep_mask(self._scores(name, p), sparsity))
        elif self.granularity == "global":
            scores = {name: self._scores(name, p) for name, p in self.params.items()}
            keep = _keep_mask(torch.cat(list(scores.values())), sparsity)
            offset = 0
            for name, p in self.params.items():
                self._set(name, p, keep[offset : offset + scores[name].numel()])
                offset += scores[name].numel()
        else:
            raise ValueError(f"unknown granularity {self.granularity!r}")
        self.current = sparsity

    @torch.no_grad()
    def apply(self) -> None:
        for name, p in self.params.items():
            mask = self.masks.get(name)
            if mask is not None:
                p.mul_(mask)

    def prune_to(self, sparsity: float, step: int) -> None:
        """Set the masks at ``sparsity`` from the weights as they are, zero the pruned ones and
        record the update at ``step`` (the schedule's updates; prune_at "before" and "after")."""
        self.update_masks(sparsity)
        self.history.append((step, sparsity))
        self.apply()

    def step(self, step: int) -> None:
        """After optimizer step ``step``: update masks on schedule, then zero pruned weights."""
        if self.schedule.is_update_step(step):
            self.prune_to(self.schedule.sparsity(step), step)
        else:
            self.apply()

    def finish(self) -> None:
        """Nothing to do after training: the masks already hold."""

    def report(self) -> SparsityReport:
        """Zeros per tensor; a tensor with outside rows counts them (its full matrix)."""
        tensors = []
        for name, p in self.params.items():
            numel, zeros = p.numel(), int((p.detach() == 0).sum())
            if name in self.outside:
                numel += self.outside[name].numel()
                zeros += int((self.outside[name] == 0).sum())
            tensors.append(TensorSparsity(name, numel, zeros, self.current))
        return SparsityReport(self.scope, self.granularity, self.schedule.final, tensors, self.total_parameters)

    def outside_report(self) -> dict[str, dict[str, float]]:
        """Per tensor with outside rows: their count and the share of their entries pruned, next
        to the share pruned of the rows the model holds (which the run's sentences use)."""
        out = {}
        for name, o in self.outside.items():
            p = self.params[name]
            out[name] = {"outside_rows": o.numel() // p.shape[1], "outside_entries_pruned": float((o == 0).float().mean()),
                         "model_rows": p.shape[0], "model_entries_pruned": float((p.detach() == 0).float().mean())}
        return out


class DensePruner:
    """The method ``dense``: prunes nothing, reports the zeros a dense model happens to have."""

    def __init__(self, model: nn.Module, schedule: Schedule | None = None, scope: str = "partial",
                 granularity: str = "per_tensor", **context):
        self.params = scope_parameters(model, scope)
        self.scope, self.granularity = scope, granularity
        self.total_parameters = sum(p.numel() for p in model.parameters())
        self.history: list[tuple[int, float]] = []

    def step(self, step: int) -> None:
        pass

    def finish(self) -> None:
        pass

    def report(self) -> SparsityReport:
        tensors = [TensorSparsity(n, p.numel(), int((p.detach() == 0).sum()), 0.0) for n, p in self.params.items()]
        return SparsityReport(self.scope, self.granularity, 0.0, tensors, self.total_parameters)
