"""The sparsity report every run writes: target and achieved, per tensor and over the scope."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class TensorSparsity:
    name: str
    numel: int
    zeros: int
    target: float

    @property
    def achieved(self) -> float:
        return self.zeros / self.numel


@dataclass(frozen=True)
class SparsityReport:
    scope: str
    granularity: str
    target: float
    tensors: list[TensorSparsity]
    total_parameters: int  # every parameter of the model, head included

    @property
    def scope_parameters(self) -> int:
        return sum(t.numel for t in self.tensors)

    @property
    def scope_zeros(self) -> int:
        return sum(t.zeros for t in self.tensors)

    @property
    def achieved(self) -> float:
        """Zeros over the scope (what the target is about)."""
        return self.scope_zeros / self.scope_parameters

    @property
    def share_of_all(self) -> float:
        """Zeros in the scope as a share of all parameters of the model."""
        return self.scope_zeros / self.total_parameters

    def table(self) -> pd.DataFrame:
        rows = [{"tensor": t.name, "numel": t.numel, "zeros": t.zeros, "target": t.target, "achieved": t.achieved}
                for t in self.tensors]
        rows.append({"tensor": "(scope)", "numel": self.scope_parameters, "zeros": self.scope_zeros,
                     "target": self.target, "achieved": self.achieved})
        rows.append({"tensor": "(all parameters)", "numel": self.total_parameters, "zeros": self.scope_zeros,
                     "target": None, "achieved": self.share_of_all})
        return pd.DataFrame(rows)
