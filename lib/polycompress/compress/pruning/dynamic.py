"""Dynamic Sparsification of gradient pruning: train once, take a subnetwork at any of a set of
sparsities (Li et al. 2022, Sec. 6.1 and appendix D).

Li et al. write each component's gate as ``g = f(alpha + t * theta)`` (Eq. 14; ``t`` the network
size kept, one minus the sparsity) and solve ``alpha`` and ``theta`` (Eq. 15-16) so that the gate
opens exactly when ``t`` is above the size at which the component's rank puts it. Their
appendix D fixes two faults of that first version, and we follow it: a component's share of the
network is its parameter cost (appendix B: a head ``4 d h + 3 h``, an FFN unit ``2 d + 1``), not
one over the number of components; and the boundary sizes are rounded to the sparsities used at
inference (here ``levels``), so that a component removed somewhere between two levels is removed
from the higher one on. With gradient importance alone ``alpha`` and ``theta`` are clamped after
they are set (Sec. 6.1), so the gate is a step function of ``t``; we store what it encodes
directly, the level from which each component is removed (:attr:`DynamicGradientPruner.removed_at`),
instead of ``alpha`` and ``theta``, which would only add the overflow in low precision that
appendix D warns of.

Where ours differs from theirs, and why:

- **When the ranking is made.** Li et al. rank components once, with the MLM loss of a
  pre-trained model, before pruning during further pre-training. We prune during fine-tuning,
  whose task head is random at step 0, so the ranking is made at the schedule's start (10% of
  the steps with the derived schedule: the step at which the separately trained ``grad`` run
  makes its first cut), by one importance measurement of the model fine-tuned that far, on the
  same development sentences (``importance_batches``). Before that the model trains dense.
- **One ranking, not a gradual one.** A separately trained ``grad`` run measures importance
  again at each of its schedule's updates, on the model pruned so far; DS ranks once, which is
  what makes its subnetworks nested (a sparser one is a subset of a denser one).
- **Which subnetwork a step trains.** From the ranking on, each optimizer step trains one level
  drawn uniformly from ``levels`` (a generator seeded by the run's seed); the paper says only that
  sizes are sampled. The dense network is not one of the levels (the run's dense twin is).

A level's structure is applied by 0/1 gates on head outputs and FFN units
(:func:`~polycompress.compress.pruning.structured.install_gates`), and with scope ``incl_embeddings``
on the rank components of the factorised word embeddings
(:mod:`~polycompress.compress.pruning.embedding_rank`, ranked with the heads and units as ``grad``
ranks them), never by zeroing weights, since the weights are shared by every level; :func:`~polycompress.compress.pruning.compact.compact` of the model
without the gates and a level's :class:`Structure` is that level's physically smaller model
(:meth:`DynamicGradientPruner.compacted`, tested to give the gated model's logits).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from .embedding_rank import factorise
from .report import SparsityReport
from .schedule import Schedule
from .structured import Structure, encoder_report, gradient_importance, install_gates, pruned_share, select, structure_masks


def nested_structures(model: nn.Module, heads: torch.Tensor, units: torch.Tensor, levels: Sequence[float],
                      allocation: str = "global", ranks: torch.Tensor | None = None) -> dict[float, Structure]:
    """level -> the structure at that share of the encoder's parameters, from one ranking
    (``heads`` (layers, heads) and ``units`` (layers, units) importance scores; with factorised
    word embeddings also ``ranks`` (d,)), each level selected on top of the one below it, so that
    a sparser structure keeps a subset of a denser one's components
    (:func:`~polycompress.compress.pruning.structured.select`)."""
    out: dict[float, Structure] = {}
    current = Structure.full(model)
    for level in sorted(levels):
        current = select(model, heads, units, level, current, allocation, ranks=ranks)
        out[level] = current
    return out


def removal_levels(structures: dict[float, Structure]) -> tuple[torch.Tensor, torch.Tensor]:
    """For nested ``structures`` (level -> structure): the lowest level at which each head
    (layers, heads) and FFN unit (layers, units) is removed, ``inf`` where no level removes it.
    A component is kept at level ``s`` exactly when its removal level is above ``s``. (Rank
    components of factorised embeddings: :func:`rank_removal_levels`.)"""
    first = next(iter(structures.values()))
    heads = torch.full(first.heads.shape, float("inf"), dtype=torch.float64)
    units = torch.full(first.units.shape, float("inf"), dtype=torch.float64)
    for level in sorted(structures, reverse=True):  # the lowest level that removes it is written last
        heads[~structures[level].heads] = level
        units[~structures[level].units] = level
    return heads, units


def rank_removal_levels(structures: dict[float, Structure]) -> torch.Tensor | None:
    """As :func:`removal_levels`, for the rank components ``(d,)`` of structures that have them."""
    first = next(iter(structures.values()))
    if first.ranks is None:
        return None
    ranks = torch.full(first.ranks.shape, float("inf"), dtype=torch.float64)
    for level in sorted(structures, reverse=True):
        ranks[~structures[level].ranks] = level
    return ranks


class DynamicGradientPruner:
    """Method ``grad`` with ``RunConfig.dynamic`` levels: call :meth:`step` after every optimizer
    step; after training, :meth:`use` a level before evaluating it.

    ``levels`` are sparsities (shares of the encoder's parameters, each in (0, 1)); the schedule's
    ``start`` is the step after which the ranking is made and ``final`` the level the run is named
    by (its largest). ``seed`` fixes which level each step trains.
    """

    def __init__(self, model: nn.Module, schedule: Schedule, scope: str = "partial", granularity: str = "per_tensor",
                 importance_batches: Callable[[], Iterable[dict]] | None = None, levels: Sequence[float] = (),
                 seed: int = 0, allocation: str = "global", precision: str = "fp32", **context):
        if scope not in ("partial", "incl_embeddings"):
            raise ValueError(f"unknown scope {scope!r}")
        if importance_batches is None:
            raise ValueError("dynamic sparsification needs development batches to rank components on")
        levels = sorted(float(s) for s in levels)
        if not levels or len(set(levels)) != len(levels) or not all(0.0 < s < 1.0 for s in levels):
            raise ValueError(f"levels must be distinct sparsities in (0, 1), got {levels}")
        if schedule.final != levels[-1]:
            raise ValueError(f"the schedule's final sparsity ({schedule.final}) must be the largest level ({levels[-1]})")
        self.model, self.schedule, self.scope, self.granularity = model, schedule, scope, granularity
        self.importance_batches, self.levels, self.allocation = importance_batches, levels, allocation
        self.precision = precision  # of the importance pass (gradient_importance)
        # the embeddings' rank gated with the heads and units: factorised before the optimizer is
        # made (the pruner is made first), the same function at step 0
        self.embedding = factorise(model) if scope == "incl_embeddings" else None
        self.structures: dict[float, Structure] = {}
        self.removed_at: tuple[torch.Tensor, torch.Tensor] | None = None
        self.ranks_removed_at: torch.Tensor | None = None
        self.ranked_at: int | None = None
        self.level = 0.0  # the level the gates apply now (0: dense, before the ranking)
        self._active_share = 0.0  # the share of the encoder that level drops
        self.current = 0.0  # the share of the encoder the last trained (or, after :meth:`use`, the active) level drops
        self.history: list[tuple[int, float]] = []  # (step, largest level): the one ranking
        # the level drawn after each step from the ranking on, for the step that follows (the
        # last is for a step after the end of training, which never comes)
        self.drawn: list[float] = []
        self.generator = torch.Generator().manual_seed(seed)
        full = Structure.full(model)
        self._gates = self._as_gates(full)
        self.handles = install_gates(model, lambda i: self._gates[0][i], lambda i: self._gates[1][i])

    def _as_gates(self, structure: Structure) -> tuple[torch.Tensor, torch.Tensor]:
        device = next(self.model.parameters()).device  # the gates multiply activations there
        if self.embedding is not None:  # the rank components' gates sit in the embedding module
            self.embedding.gate = structure.ranks.to(device=device, dtype=self.embedding.left.dtype)
        return structure.heads.float().to(device), structure.units.float().to(device)

    def rank(self, step: int = 0) -> None:
        """Measure importance once on the model as it is and fix every level's structure."""
        ranks = None
        if self.embedding is not None:
            self.embedding.gate = None  # importance is measured through gates of its own
            heads, units, ranks = gradient_importance(self.model, self.importance_batches(), ranks=True,
                                                     precision=self.precision)
        else:
            heads, units = gradient_importance(self.model, self.importance_batches(), precision=self.precision)
        self._set_levels(heads, units, ranks)
        self.ranked_at = step
        self.history.append((step, self.levels[-1]))

    def _set_levels(self, heads: torch.Tensor, units: torch.Tensor, ranks: torch.Tensor | None) -> None:
        """Every level's structure from one ranking (scores; lowest removed first), and the level
        at which each component goes."""
        self.structures = nested_structures(self.model, heads, units, self.levels, self.allocation, ranks)
        self.removed_at = removal_levels(self.structures)
        self.ranks_removed_at = rank_removal_levels(self.structures)

    def use(self, level: float) -> None:
        """Run the model through ``level``'s subnetwork from now on (0.0: dense)."""
        if level == 0.0:
            structure = Structure.full(self.model)
        elif level in self.structures:
            structure = self.structures[level]
        else:
            raise KeyError(f"no subnetwork at level {level}: levels are {self.levels}"
                           + ("" if self.structures else " (and the ranking has not been made yet)"))
        self.level, self._gates = level, self._as_gates(structure)
        self._active_share = self.current = pruned_share(self.model, structure)

    def step(self, step: int) -> None:
        """After optimizer step ``step``: rank at the schedule's start, then draw the level the
        next step trains."""
        if self.ranked_at is None and step >= self.schedule.start:
            self.rank(step)
        if self.ranked_at is not None:
            trained = self._active_share  # before the ranking's first draw: dense, 0
            level = self.levels[int(torch.randint(len(self.levels), (1,), generator=self.generator))]
            self.use(level)
            self.drawn.append(level)
            self.current = trained  # the training curve's: the share of the level that trained `step`

    def finish(self) -> None:
        """Rank now if training ended before the schedule's start; then gate with the largest level
        (the run's own sparsity) until :meth:`use` picks another."""
        if self.ranked_at is None:
            self.rank(-1)
        self.use(self.levels[-1])

    def steps_per_level(self) -> dict[float, int]:
        """level -> optimizer steps that trained its subnetwork (the last draw trained none)."""
        return {level: self.drawn[:-1].count(level) for level in self.levels}

    def achieved(self, level: float) -> float:
        """Share of the encoder's parameters ``level``'s subnetwork drops."""
        return pruned_share(self.model, self.structures[level])

    def remove_gates(self) -> None:
        """Uninstall the gates (the model computes densely again; :meth:`use` no longer acts)."""
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        if self.embedding is not None:
            self.embedding.gate = None

    def compacted(self, level: float) -> nn.Module:
        """A physically smaller copy of the model with ``level``'s heads and FFN units only
        (:func:`~polycompress.compress.pruning.compact.compact`, of a copy without the gates)."""
        from .compact import compact

        handles, self.handles = self.handles, []
        for handle in handles:  # compact deep-copies the model: the gates must not go with it
            handle.remove()
        rank_gate = self.embedding.gate if self.embedding is not None else None
        if self.embedding is not None:
            self.embedding.gate = None
        try:
            return compact(self.model, self.structures[level])
        finally:
            if handles:  # back as they were (not after remove_gates)
                self.handles = install_gates(self.model, lambda i: self._gates[0][i], lambda i: self._gates[1][i])
                if self.embedding is not None:
                    self.embedding.gate = rank_gate

    def report(self) -> SparsityReport:
        """Zeros over the encoder with the active level's heads and units counted as removed
        (the weights themselves are not zeroed: every level shares them)."""
        structure = self.structures.get(self.level, Structure.full(self.model))
        return encoder_report(self.model, self.granularity, self.schedule.final, structure_masks(self.model, structure))
