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
"""

from __future__ import annotations

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


def _keep_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Boolean mask keeping the ``n - round(sparsity * n)`` largest scores (flattened)."""
    n = scores.numel()
    n_keep = n - int(round(sparsity * n))
    mask = torch.zeros(n, dtype=torch.bool, device=scores.device)
    if n_keep > 0:
        mask[torch.topk(scores.flatten(), n_keep, largest=True, sorted=False).indices] = True
    return mask


class MagnitudePruner:
    """Gradual magnitude pruning: call :meth:`step` after every optimizer step."""

    def __init__(self, model: nn.Module, schedule: Schedule, scope: str = "partial", granularity: str = "per_tensor",
                 **context):
        self.schedule = schedule
        self.scope = scope
        self.granularity = granularity
        self.params = scope_parameters(model, scope)
        # 1.0 keeps, 0.0 prunes; stored in the weights' dtype so that the per-step multiply
        # needs no conversion (a bool mask would be cast to float on every step)
        self.masks: dict[str, torch.Tensor] = {}
        self.current = 0.0
        self.total_parameters = sum(p.numel() for p in model.parameters())
        self.history: list[tuple[int, float]] = []  # (step, target sparsity) at each update

    @torch.no_grad()
    def update_masks(self, sparsity: float) -> None:
        """Recompute the masks at ``sparsity`` from the current weight magnitudes."""
        if self.granularity == "per_tensor":
            for name, p in self.params.items():
                self.masks[name] = _keep_mask(p.detach().abs(), sparsity).view_as(p).to(p.dtype)
        elif self.granularity == "global":
            flat = torch.cat([p.detach().abs().flatten() for p in self.params.values()])
            keep = _keep_mask(flat, sparsity)
            offset = 0
            for name, p in self.params.items():
                self.masks[name] = keep[offset : offset + p.numel()].view_as(p).to(p.dtype)
                offset += p.numel()
        else:
            raise ValueError(f"unknown granularity {self.granularity!r}")
        self.current = sparsity

    @torch.no_grad()
    def apply(self) -> None:
        for name, p in self.params.items():
            mask = self.masks.get(name)
            if mask is not None:
                p.mul_(mask)

    def step(self, step: int) -> None:
        """After optimizer step ``step``: update masks on schedule, then zero pruned weights."""
        if self.schedule.is_update_step(step):
            target = self.schedule.sparsity(step)
            self.update_masks(target)
            self.history.append((step, target))
        self.apply()

    def finish(self) -> None:
        """Nothing to do after training: the masks already hold."""

    def report(self) -> SparsityReport:
        tensors = [
            TensorSparsity(name, p.numel(), int((p.detach() == 0).sum()), self.current)
            for name, p in self.params.items()
        ]
        return SparsityReport(self.scope, self.granularity, self.schedule.final, tensors, self.total_parameters)


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
