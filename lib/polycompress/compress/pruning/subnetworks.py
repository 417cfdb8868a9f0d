"""Gradient pruning with one subnetwork per language: Li et al.'s (2022) ``non_shared`` setting.

The weights stay shared; every training language gets a structure of its own (kept heads and
FFN units, :class:`~polycompress.compress.pruning.structured.Structure`), chosen by gradient importance on
that language's development sentences alone, on the same gradual schedule and to the same
target as the shared method. Structures are applied by 0/1 gates on head outputs and FFN units
(:func:`~polycompress.compress.pruning.structured.install_gates`), not by zeroing weights, since a head one
language drops another may keep. Each training batch holds one language's sentences and runs
through that language's subnetwork (so a head a language dropped gets no gradient from it), and
each language is evaluated with its own subnetwork (:meth:`LanguageGradientPruner.use`).

A gate of 0 after a head's attention (before the output matrix) or after an FFN unit's
activation computes what removing that head's Q/K/V/O slices or that unit's two slices
computes, so :func:`~polycompress.compress.pruning.compact.compact` of a copy of the model with one
language's structure gives that language's physically smaller model (tested).

With scope ``incl_embeddings`` the word embeddings are factorised
(:mod:`~polycompress.compress.pruning.embedding_rank`) and each language's structure also keeps rank
components of its own, ranked with its heads and units and gated in the embedding module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from .embedding_rank import factorise
from .report import SparsityReport
from .schedule import Schedule
from .structured import Structure, encoder_report, gradient_importance, install_gates, pruned_share, select, structure_masks


class LanguageGradientPruner:
    """Method ``grad`` with ``subnetworks="non_shared"``: call :meth:`use` (or :meth:`use_group`)
    before every batch, :meth:`step` after every optimizer step.

    ``importance_batches(code)`` returns the development batches of language ``code``.
    """

    def __init__(self, model: nn.Module, schedule: Schedule, scope: str = "partial", granularity: str = "per_tensor",
                 importance_batches: Callable[[str], Iterable[dict]] | None = None,
                 languages: Sequence[str] = (), precision: str = "fp32", **context):
        if scope not in ("partial", "incl_embeddings"):
            raise ValueError(f"unknown scope {scope!r}")
        if importance_batches is None or not languages:
            raise ValueError("non-shared subnetworks need the training languages and their development batches")
        self.model, self.schedule, self.scope, self.granularity = model, schedule, scope, granularity
        # factorised before the optimizer is made (the pruner is made first): the same function
        self.embedding = factorise(model) if scope == "incl_embeddings" else None
        self.importance_batches, self.languages = importance_batches, list(languages)
        self.precision = precision  # of the importance pass (gradient_importance)
        self.structures = {code: Structure.full(model) for code in self.languages}
        self.current = 0.0  # mean over languages of the share of the encoder each one's subnetwork drops
        self.history: list[tuple[int, float]] = []
        self.active = self.languages[0]
        self._gates: tuple[torch.Tensor, torch.Tensor] = (torch.ones(0), torch.ones(0))
        self.use(self.active)
        self.handles = install_gates(model, lambda i: self._gates[0][i], lambda i: self._gates[1][i])

    def use(self, code: str) -> None:
        """Run the model through ``code``'s subnetwork from now on."""
        s = self.structures[code]
        device = next(self.model.parameters()).device  # the gates multiply activations there
        self.active, self._gates = code, (s.heads.float().to(device), s.units.float().to(device))
        if self.embedding is not None:
            self.embedding.gate = s.ranks.to(device=device, dtype=self.embedding.left.dtype)

    def use_group(self, index: int) -> None:
        """:meth:`use` by position in the training languages (the training loop's batch groups)."""
        self.use(self.languages[index])

    def update(self, sparsity: float) -> None:
        if sparsity <= 0.0:  # selection keeps everything at target 0 (GradientPruner.update)
            return
        active = self.active
        for code in self.languages:  # importance of each language measured through its own subnetwork
            self.use(code)
            if self.embedding is not None:
                heads, units, ranks = gradient_importance(self.model, self.importance_batches(code), ranks=True,
                                                         precision=self.precision)
                self.structures[code] = select(self.model, heads, units, sparsity, self.structures[code], ranks=ranks)
            else:
                heads, units = gradient_importance(self.model, self.importance_batches(code),
                                                   precision=self.precision)
                self.structures[code] = select(self.model, heads, units, sparsity, self.structures[code])
        self.use(active)
        self.current = sum(self.achieved(c) for c in self.languages) / len(self.languages)

    def step(self, step: int) -> None:
        if self.schedule.is_update_step(step):
            target = self.schedule.sparsity(step)
            self.update(target)
            self.history.append((step, target))

    def finish(self) -> None:
        """Nothing to do: the gates stay for evaluation, one language at a time."""

    def achieved(self, code: str) -> float:
        """Share of the encoder's parameters ``code``'s subnetwork drops."""
        return pruned_share(self.model, self.structures[code])

    def shared_structure(self) -> Structure:
        """What every language dropped: the part of the encoder no subnetwork uses."""
        return Structure.union(self.structures.values())

    def report(self) -> SparsityReport:
        """Zeros over the encoder once what *no* language uses is removed (the weights themselves
        are not zeroed: each language's own share is :meth:`achieved`)."""
        masks = structure_masks(self.model, self.shared_structure())
        return encoder_report(self.model, self.granularity, self.schedule.final, masks)
