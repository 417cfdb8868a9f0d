"""Structured pruning of attention heads and FFN units by gradient importance (method ``grad``).

Michel et al. (2019) and Li et al. (2022, Sec. 4.1): put a gate ``g`` (1.0) on every attention
head's output and on every FFN hidden unit, and score each by ``I = E |dL/dg|`` at ``g = 1`` (equal
to ``|head^T dL/dhead|``), the task loss averaged over development batches (the absolute value
taken per batch of averaged loss, as Michel et al.'s released code does, not per example as their
Eq. and Li et al.'s Eq. 4 write the expectation). Scores are normalised
per layer by their L2 norm (Michel et al.) and then ranked across layers.

Sparsity is a share of the encoder's (non-embedding) parameters: a head costs its Q, K, V rows
and biases and its columns of the attention output matrix (``4 d h + 3 h`` for width ``d``, head
size ``h``), an FFN unit its row and bias in the first matrix and its column in the second
(``2 d + 1``) -- Li et al., Appendix B. To reach a target ``s`` one threshold is set over all
heads and FFN units together (Li et al., Sec. 4.1): components are removed from the lowest
score up, each counting its parameter cost, until the removed parameters are ``s`` of the
encoder's; every layer keeps at least one head and one unit so that it stays a layer. How the
sparsity splits between heads and units is therefore an outcome, not a choice (Li et al., Fig. 3,
report that gradient pruning keeps nearly all heads); :func:`select` with ``allocation="equal"``
keeps the earlier variant that removes the same fraction of each, for comparison only. With the
per-layer normalisation above, a layer's heads share one unit norm and its FFN units another, so
a typical unit scores about ``sqrt(heads / units)`` of a typical head (1/11 for 12 heads and 1,536
units): the one threshold removes units first partly by that scale (measured on e5-small at 50%:
every head kept, three quarters of the FFN units removed).

Pruning follows the same gradual schedule as IMP: at each update step importance is measured
again on the current (already pruned) model and the pruned share raised to the schedule's
target. Between updates, pruned structures are held at exactly zero (weights *and* biases), which
makes the model compute exactly what the physically smaller model of
:mod:`polycompress.compress.pruning.compact` computes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from ...config import PRECISIONS
from ...training import autocast
from .embedding_rank import factorise, factorised
from .report import SparsityReport, TensorSparsity
from .schedule import Schedule


def encoder_layers(model: nn.Module) -> list[nn.Module]:
    """The transformer layers of a BERT-like model (``encoder.layer``)."""
    base = getattr(model, model.base_model_prefix, model)
    return list(base.encoder.layer)


@dataclass
class Structure:
    """Kept heads ``(layers, heads)`` and kept FFN units ``(layers, units)``, bool; with factorised
    word embeddings (:mod:`~polycompress.compress.pruning.embedding_rank`) also their kept rank
    components ``ranks`` ``(d,)``, else None."""

    heads: torch.Tensor
    units: torch.Tensor
    ranks: torch.Tensor | None = None

    @classmethod
    def full(cls, model: nn.Module) -> Structure:
        layers = encoder_layers(model)
        n_heads = layers[0].attention.self.num_attention_heads
        n_units = layers[0].intermediate.dense.out_features
        emb = factorised(model)
        return cls(torch.ones(len(layers), n_heads, dtype=torch.bool), torch.ones(len(layers), n_units, dtype=torch.bool),
                   None if emb is None else torch.ones(emb.rank, dtype=torch.bool))

    @classmethod
    def union(cls, structures: Iterable[Structure]) -> Structure:
        """What any of ``structures`` keeps (non-shared subnetworks: what no language drops)."""
        every = list(structures)
        return cls(torch.stack([s.heads for s in every]).any(0), torch.stack([s.units for s in every]).any(0),
                   None if every[0].ranks is None else torch.stack([s.ranks for s in every]).any(0))


def costs(model: nn.Module) -> tuple[int, int, int]:
    """(parameters per head, per FFN unit, in all encoder layers), see the module docstring."""
    layers = encoder_layers(model)
    att = layers[0].attention.self
    d, h = att.query.in_features, att.attention_head_size
    total = sum(p.numel() for layer in layers for p in layer.parameters())
    return 4 * d * h + 3 * h, 2 * d + 1, total


def rank_costs(model: nn.Module) -> tuple[int, int]:
    """(parameters per rank component of the factorised word embeddings, in all of them)."""
    emb = factorised(model)
    if emb is None:
        raise ValueError("the model's word embeddings are not factorised (embedding_rank.factorise)")
    return emb.left.shape[0] + emb.right.shape[1], emb.left.numel() + emb.right.numel()


def pruned_share(model: nn.Module, structure: Structure) -> float:
    """Share of the encoder's parameters that ``structure`` removes; with ``ranks``, of the
    encoder's and the factorised word embeddings' together."""
    head, unit, total = costs(model)
    removed = int((~structure.heads).sum()) * head + int((~structure.units).sum()) * unit
    if structure.ranks is not None:
        rank, emb_total = rank_costs(model)
        removed, total = removed + int((~structure.ranks).sum()) * rank, total + emb_total
    return removed / total


def install_gates(model: nn.Module, heads: Callable[[int], torch.Tensor], units: Callable[[int], torch.Tensor],
                  before: Callable[[], None] | None = None) -> list:
    """Forward hooks multiplying every head's output by ``heads(layer)`` (shape (H,)) and every
    FFN unit by ``units(layer)`` (shape (units,)); ``before()`` runs at the start of each forward
    pass (before the first layer). Returns the hook handles (``.remove()`` each to uninstall)."""
    handles = []
    for i, layer in enumerate(encoder_layers(model)):
        size = layer.attention.self.attention_head_size

        def gate_heads(module, args, i=i, size=size):
            # (B, L, H*h): the heads' concatenated outputs, before the output matrix
            return (args[0] * heads(i).repeat_interleave(size),)

        def gate_units(module, args, output, i=i):
            return output * units(i)  # (B, L, units) after the activation

        if before is not None and i == 0:
            handles.append(layer.register_forward_pre_hook(lambda module, args: before()))
        handles.append(layer.attention.output.dense.register_forward_pre_hook(gate_heads))
        handles.append(layer.intermediate.register_forward_hook(gate_units))
    return handles


class _Gates:
    """Gates of 1.0 on head outputs and FFN units, installed while in use (``with``)."""

    def __init__(self, model: nn.Module):
        self.model = model
        full = Structure.full(model)
        device = next(model.parameters()).device  # the gates multiply activations there
        self.heads = torch.ones(full.heads.shape, requires_grad=True, device=device)
        self.units = torch.ones(full.units.shape, requires_grad=True, device=device)
        self.handles: list = []

    def __enter__(self) -> _Gates:
        self.handles = install_gates(self.model, lambda i: self.heads[i], lambda i: self.units[i])
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


def gradient_importance(model: nn.Module, batches: Iterable[dict], ranks: bool = False,
                        precision: str = "fp32"):
    """``E |dL/dg|`` for every head ``(layers, heads)`` and FFN unit ``(layers, units)``,
    normalised per layer by the L2 norm; with ``ranks`` (factorised word embeddings) also for
    every rank component ``(d,)``, normalised as one more group, as a third tensor, measured
    through the 0/1 rank gate the embeddings hold if any (a subnetwork's). ``batches`` are model
    inputs with ``labels``; the model's weights and gradients are left as they were (dropout off
    while measuring).

    ``precision`` "bf16" runs the forward pass under bf16 autocast, as training does (the
    gates and scores stay float32): on e5-small, 800 development sentences take 13.8 s instead of
    21.8 s at 2 threads and the top half of the ranking is 99.8% the same as in fp32
    (benchmarks/importance_speed.py). "fp16" measures in fp32: without a loss scaler the gates'
    gradients would underflow in half precision."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    device = next(model.parameters()).device.type
    cast = precision if precision == "bf16" else "fp32"
    was_training = model.training
    model.eval()
    saved = {n: (None if p.grad is None else p.grad.clone()) for n, p in model.named_parameters()}
    emb = factorised(model) if ranks else None
    if ranks and emb is None:
        raise ValueError("rank importance needs factorised word embeddings (embedding_rank.factorise)")
    scores: list[torch.Tensor | None] = [None, None, None]
    n = 0
    base = emb.gate if emb is not None else None  # a subnetwork's rank gate: measured through it
    with _Gates(model) as gates, torch.enable_grad():
        leaf = None
        if emb is not None:
            leaf = torch.ones(emb.rank, requires_grad=True, device=emb.left.device)
        try:
            for batch in batches:
                if emb is not None:  # a new product each pass: autograd frees the last one's graph
                    emb.gate = leaf if base is None else leaf * base
                with autocast(device, cast):
                    loss = model(**batch).loss
                wrt = [gates.heads, gates.units] + ([leaf] if emb is not None else [])
                for k, g in enumerate(torch.autograd.grad(loss, wrt)):
                    scores[k] = g.abs() if scores[k] is None else scores[k] + g.abs()
                n += 1
        finally:
            if emb is not None:
                emb.gate = base
    for name, p in model.named_parameters():
        p.grad = saved[name]
    model.train(was_training)
    if n == 0:
        raise ValueError("no batches to measure importance on")
    heads, units = scores[0] / n, scores[1] / n
    # per-layer L2 normalisation (Michel et al. 2019, Sec. 4.1); a layer of zeros stays zero
    heads = heads / heads.norm(dim=1, keepdim=True).clamp_min(1e-20)
    units = units / units.norm(dim=1, keepdim=True).clamp_min(1e-20)
    # structures live on the CPU whatever the model's device (small; selected element by element)
    if emb is None:
        return heads.cpu(), units.cpu()
    rank = scores[2] / n
    return heads.cpu(), units.cpu(), (rank / rank.norm().clamp_min(1e-20)).cpu()


def _prune_lowest(scores: torch.Tensor, keep: torch.Tensor, n_prune: int) -> torch.Tensor:
    """Remove the ``n_prune`` lowest-scoring kept items, never a layer's last one."""
    keep = keep.clone()
    order = torch.argsort(scores.flatten().masked_fill(~keep.flatten(), float("inf")), stable=True)
    removed = int((~keep).sum())
    for flat in order.tolist():
        if removed >= n_prune:
            break
        layer, item = divmod(flat, keep.shape[1])
        if keep[layer, item] and int(keep[layer].sum()) > 1:
            keep[layer, item] = False
            removed += 1
    return keep


#: how :func:`select` splits a target between heads and FFN units
ALLOCATIONS = ("global", "equal")


def select(model: nn.Module, heads: torch.Tensor, units: torch.Tensor, sparsity: float,
           current: Structure | None = None, allocation: str = "global", ranks: torch.Tensor | None = None) -> Structure:
    """The structure at ``sparsity`` (share of encoder parameters) on top of ``current`` (pruned
    stays pruned).

    ``allocation`` "global" (the default, Li et al. Sec. 4.1): one threshold over heads and FFN
    units together; the lowest-scoring kept components are removed, heads and units in one order,
    until their parameter cost reaches the target (the last one may overshoot by less than one
    head's cost). "equal": the same fraction of heads and of units, FFN units making up what the
    one-head-per-layer floor stops the heads short of. A target that heads and units cannot
    reach raises ``ValueError``.
    """
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, not {allocation!r}")
    head, unit, total = costs(model)
    current = current or Structure.full(model)
    if ranks is not None or current.ranks is not None:
        return _select_with_ranks(model, heads, units, ranks, sparsity, current, allocation)
    if allocation == "global":
        out = _select_global(heads, units, current, head, unit, sparsity * total)
    else:
        n_heads, n_units = current.heads.numel(), current.units.numel()
        fraction = sparsity * total / (n_heads * head + n_units * unit)
        kept_heads = _prune_lowest(heads, current.heads, round(min(fraction, 1.0) * n_heads))
        wanted = sparsity * total - int((~kept_heads).sum()) * head  # parameters left for the units
        kept_units = _prune_lowest(units, current.units, max(0, round(wanted / unit)))
        out = Structure(kept_heads, kept_units)
    if pruned_share(model, out) < sparsity - (head + unit) / total:
        raise ValueError(f"sparsity {sparsity} exceeds what heads and FFN units can give while every layer "
                         f"keeps one of each (reached {pruned_share(model, out):.3f})")
    return out


def _select_global(heads: torch.Tensor, units: torch.Tensor, current: Structure, head_cost: int, unit_cost: int,
                   target_params: float) -> Structure:
    """Remove kept heads and units from the lowest score up (ties: heads first, then by position)
    until ``target_params`` parameters are removed, never a layer's last head or unit."""
    keep_h, keep_u = current.heads.clone(), current.units.clone()
    removed = int((~keep_h).sum()) * head_cost + int((~keep_u).sum()) * unit_cost
    if removed >= target_params:
        return Structure(keep_h, keep_u)
    scores = torch.cat([heads.flatten(), units.flatten()]).double()
    kept = torch.cat([keep_h.flatten(), keep_u.flatten()])
    order = torch.argsort(scores.masked_fill(~kept, float("inf")), stable=True)
    n_h = heads.numel()
    for flat in order.tolist():
        if removed >= target_params or not bool(kept[flat]):
            break
        keep, index, cost = (keep_h, flat, head_cost) if flat < n_h else (keep_u, flat - n_h, unit_cost)
        layer, item = divmod(index, keep.shape[1])
        if int(keep[layer].sum()) > 1:
            keep[layer, item] = False
            removed += cost
    return Structure(keep_h, keep_u)


def _select_with_ranks(model: nn.Module, heads: torch.Tensor, units: torch.Tensor, ranks: torch.Tensor | None,
                       sparsity: float, current: Structure, allocation: str) -> Structure:
    """:func:`select` over heads, FFN units and the word embeddings' rank components together
    (one threshold, each at its parameter cost; the embeddings keep at least one component)."""
    if allocation != "global" or ranks is None or current.ranks is None:
        raise ValueError("rank components are selected with allocation 'global', with their scores and a "
                         "structure that has ranks (factorised word embeddings)")
    head, unit, total = costs(model)
    rank, emb_total = rank_costs(model)
    target = sparsity * (total + emb_total)
    groups = [(heads, current.heads.clone(), head), (units, current.units.clone(), unit),
              (ranks.reshape(1, -1), current.ranks.clone().reshape(1, -1), rank)]
    removed = sum(int((~keep).sum()) * cost for _, keep, cost in groups)
    scores = torch.cat([g.flatten() for g, _, _ in groups]).double()
    kept = torch.cat([k.flatten() for _, k, _ in groups])
    order = torch.argsort(scores.masked_fill(~kept, float("inf")), stable=True)
    bounds = torch.tensor([0] + [g.numel() for g, _, _ in groups]).cumsum(0).tolist()
    for flat in order.tolist():
        if removed >= target or not bool(kept[flat]):
            break
        k = next(i for i in range(len(groups)) if flat < bounds[i + 1])
        _, keep, cost = groups[k]
        row, item = divmod(flat - bounds[k], keep.shape[1])
        if int(keep[row].sum()) > 1:  # a layer keeps a head and a unit, the embeddings a component
            keep[row, item] = False
            removed += cost
    out = Structure(groups[0][1], groups[1][1], groups[2][1].reshape(-1))
    if pruned_share(model, out) < sparsity - (head + unit + rank) / (total + emb_total):
        raise ValueError(f"sparsity {sparsity} exceeds what heads, FFN units and rank components can give "
                         f"(reached {pruned_share(model, out):.3f})")
    return out


def structure_masks(model: nn.Module, structure: Structure) -> dict[str, tuple[nn.Parameter, torch.Tensor]]:
    """name -> (parameter, 0/1 mask in its dtype) zeroing every pruned head and FFN unit."""
    out = {}
    base = model.base_model_prefix
    for i, layer in enumerate(encoder_layers(model)):
        att = layer.attention.self
        h = att.attention_head_size
        device = att.query.weight.device  # structures are on the CPU, masks go where the weights are
        head_rows = structure.heads[i].to(device).repeat_interleave(h)  # (H*h,)
        units = structure.units[i].to(device)
        prefix = f"{base}.encoder.layer.{i}."
        parts = {
            "attention.self.query": (att.query, head_rows, None), "attention.self.key": (att.key, head_rows, None),
            "attention.self.value": (att.value, head_rows, None),
            "attention.output.dense": (layer.attention.output.dense, None, head_rows),
            "intermediate.dense": (layer.intermediate.dense, units, None),
            "output.dense": (layer.output.dense, None, units),
        }
        for name, (linear, rows, cols) in parts.items():
            w = torch.ones_like(linear.weight)
            if rows is not None:
                w[~rows] = 0
                out[prefix + name + ".bias"] = (linear.bias, rows.to(linear.bias.dtype))
            if cols is not None:
                w[:, ~cols] = 0
            out[prefix + name + ".weight"] = (linear.weight, w)
    emb = factorised(model)
    if structure.ranks is not None and emb is not None:
        keep = structure.ranks.to(emb.left.device).to(emb.left.dtype)
        name = next(n for n, m in model.named_modules() if m is emb)
        out[name + ".left"] = (emb.left, keep.expand_as(emb.left).clone())  # a component's column
        out[name + ".right"] = (emb.right, keep.unsqueeze(1).expand_as(emb.right).clone())  # and its row
    return out


def encoder_report(model: nn.Module, granularity: str, target: float,
                   masks: dict[str, tuple[nn.Parameter, torch.Tensor]] | None = None) -> SparsityReport:
    """Zeros over the encoder layers' parameters (the scope structured sparsity is measured on);
    with ``masks`` (:func:`structure_masks`), entries they zero count as zeros too."""
    masks = masks or {}

    def zeros(name: str, p: nn.Parameter) -> int:
        zero = p.detach() == 0
        return int((zero | (masks[name][1] == 0)).sum() if name in masks else zero.sum())

    # the scope: the encoder's layers, and factorised word embeddings when the masks prune their rank
    tensors = [TensorSparsity(n, p.numel(), zeros(n, p), target)
               for n, p in model.named_parameters()
               if ".encoder.layer." in f".{n}" or (n.endswith((".left", ".right")) and n in masks)]
    return SparsityReport("encoder", granularity, target, tensors, sum(p.numel() for p in model.parameters()))


class GradientPruner:
    """Method ``grad``: call :meth:`step` after every optimizer step.

    ``importance_batches`` returns the development batches importance is measured on (called
    at each update: the batches may be rebuilt or re-sampled).
    """

    def __init__(self, model: nn.Module, schedule: Schedule, scope: str = "partial", granularity: str = "per_tensor",
                 importance_batches: Callable[[], Iterable[dict]] | None = None, precision: str = "fp32",
                 **context):
        if scope not in ("partial", "incl_embeddings"):
            raise ValueError(f"unknown scope {scope!r}")
        if importance_batches is None:
            raise ValueError("method 'grad' needs development batches to measure importance on")
        self.model, self.schedule, self.scope, self.granularity = model, schedule, scope, granularity
        self.importance_batches, self.precision = importance_batches, precision
        if scope == "incl_embeddings":
            # the embeddings' rank is pruned with the heads and units (Li et al. Eq. 3): the model
            # trains the factorised product from the start (the same function at step 0), so the
            # optimizer, made after the pruner, holds its factors
            factorise(model)
        self.structure = Structure.full(model)
        self.masks: dict[str, tuple[nn.Parameter, torch.Tensor]] = {}
        self.current = 0.0
        self.history: list[tuple[int, float]] = []

    @torch.no_grad()
    def apply(self) -> None:
        for param, mask in self.masks.values():
            param.mul_(mask)

    def update(self, sparsity: float) -> None:
        # the schedule's first update has target 0, where selection keeps every component
        # whatever the scores: the measurement (a forward and backward pass over the development
        # sentences, about 8% of a default multilingual grad run) would change nothing
        if sparsity <= 0.0:
            pass
        elif self.structure.ranks is not None:
            heads, units, ranks = gradient_importance(self.model, self.importance_batches(), ranks=True,
                                                     precision=self.precision)
            self.structure = select(self.model, heads, units, sparsity, self.structure, ranks=ranks)
        else:
            heads, units = gradient_importance(self.model, self.importance_batches(), precision=self.precision)
            self.structure = select(self.model, heads, units, sparsity, self.structure)
        self.masks = structure_masks(self.model, self.structure)
        self.current = pruned_share(self.model, self.structure)

    def step(self, step: int) -> None:
        if self.schedule.is_update_step(step):
            target = self.schedule.sparsity(step)
            self.update(target)
            self.history.append((step, target))
        self.apply()

    def finish(self) -> None:
        """Nothing to do after training: the masks already hold."""

    def report(self) -> SparsityReport:
        # with the embeddings' rank pruned, their factors are part of the scope (the masks name them)
        return encoder_report(self.model, self.granularity, self.schedule.final,
                              self.masks if self.structure.ranks is not None else None)
