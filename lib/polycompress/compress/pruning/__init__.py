"""Pruning methods, looked up by name: ``METHODS[name](model, schedule, scope, granularity, **context)``.

Every method is an object with ``step(step)`` (called after each optimizer step), ``finish()``
(called once, after training, before evaluation) and ``report() -> SparsityReport``; a method
that trains parameters of its own also has ``penalty()``, a term added to the loss. ``context``
carries what a method may need from the run (``importance_batches``: development batches, for
``grad``; ``languages``: the training languages); a method ignores what it does not use.
:class:`~polycompress.compress.pruning.subnetworks.LanguageGradientPruner` is ``grad`` with one subnetwork per
language (``RunConfig.subnetworks = "non_shared"``); it also has ``use(language)``. New methods register here and every grid,
result and chapter can use them by name.
"""

from __future__ import annotations

from .magnitude import DensePruner, MagnitudePruner, scope_parameters
from .report import SparsityReport, TensorSparsity
from .l0 import L0Pruner
from .schedule import Schedule, derived_schedule, paper_schedule
from .structured import GradientPruner

METHODS: dict[str, type] = {
    "dense": DensePruner,
    "imp": MagnitudePruner,
    "grad": GradientPruner,
    "l0": L0Pruner,
}

__all__ = ["METHODS", "DensePruner", "GradientPruner", "L0Pruner", "MagnitudePruner", "Schedule", "SparsityReport",
           "TensorSparsity", "derived_schedule", "paper_schedule", "scope_parameters"]
