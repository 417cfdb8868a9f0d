"""Pruning methods, looked up by name: ``METHODS[name](model, schedule, scope, granularity)``.

Every method is an object with ``step(step)`` (called after each optimizer step) and
``report() -> SparsityReport``. New methods register here and every grid, result and chapter
can use them by name.
"""

from __future__ import annotations

from .magnitude import DensePruner, MagnitudePruner, scope_parameters
from .report import SparsityReport, TensorSparsity
from .schedule import Schedule, derived_schedule, paper_schedule

METHODS: dict[str, type] = {
    "dense": DensePruner,
    "imp": MagnitudePruner,
}

__all__ = ["METHODS", "DensePruner", "MagnitudePruner", "Schedule", "SparsityReport", "TensorSparsity",
           "derived_schedule", "paper_schedule", "scope_parameters"]
