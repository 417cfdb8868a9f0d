"""The word embeddings as a product whose rank can be pruned (Li et al. 2022, Eq. 3).

Li et al. decompose the embedding matrix ``E`` (vocabulary ``V`` x width ``d``) as
``E = Ê diag(G_e) P`` and put a gate on each of the ``d`` rank components, so that structured
pruning can shrink the embeddings too (in XLM-R they hold 69% of the parameters; in our trimmed
e5-small, 83,189 x 384 of 45M). :func:`factorise` replaces a model's word embeddings by
:class:`FactorisedEmbedding`, built from ``E``'s singular value decomposition ``E = U S V^T``:
``left = U S`` (``V x d``) and ``right = V^T`` (``d x d``), so that the model computes what it
computed before (to float rounding) and the components come ordered by singular value. A rank
component costs ``V + d`` parameters (a column of ``left`` and a row of ``right``); the
factorised matrix holds ``d (V + d)``, ``d^2`` more than ``E`` (0.5% for e5-small's trimmed
vocabulary), which the sparsity's denominator counts.

Why our own module: ``transformers`` has no factorised embedding for BERT (ALBERT's factorised
embeddings are a different architecture with its own projection size), and the decomposition
must start from the pre-trained matrix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FactorisedEmbedding(nn.Module):
    """``forward(ids) = (left[ids] * gate) @ right``: ``left`` (V x r), ``right`` (r x d); ``gate``
    (r,) is None (all ones) except while importance is measured."""

    def __init__(self, left: torch.Tensor, right: torch.Tensor, padding_idx: int | None = None):
        super().__init__()
        self.left = nn.Parameter(left)
        self.right = nn.Parameter(right)
        self.padding_idx = padding_idx
        self.gate: torch.Tensor | None = None
        self.num_embeddings, self.embedding_dim = left.shape[0], right.shape[1]

    @classmethod
    def from_weight(cls, weight: torch.Tensor, padding_idx: int | None = None) -> FactorisedEmbedding:
        """The full-rank factorisation of ``weight`` (V x d) by its SVD, in ``weight``'s dtype."""
        u, s, vh = torch.linalg.svd(weight.detach().float(), full_matrices=False)
        return cls((u * s).to(weight.dtype), vh.to(weight.dtype), padding_idx)

    @property
    def rank(self) -> int:
        return self.left.shape[1]

    @property
    def weight(self) -> torch.Tensor:
        """The embedding matrix the product stands for (V x d), computed (for reports that read rows)."""
        return self.left @ self.right

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = F.embedding(ids, self.left, self.padding_idx)
        if self.gate is not None:
            h = h * self.gate
        return h @ self.right


def factorise(model: nn.Module) -> FactorisedEmbedding:
    """Replace ``model``'s word embeddings by their full-rank :class:`FactorisedEmbedding` (once:
    a model already factorised keeps its own); returns it."""
    current = model.get_input_embeddings()
    if isinstance(current, FactorisedEmbedding):
        return current
    factorised = FactorisedEmbedding.from_weight(current.weight, current.padding_idx).to(current.weight.device)
    model.set_input_embeddings(factorised)
    return factorised


def factorised(model: nn.Module) -> FactorisedEmbedding | None:
    """``model``'s word embeddings if factorised, else None."""
    current = model.get_input_embeddings()
    return current if isinstance(current, FactorisedEmbedding) else None
