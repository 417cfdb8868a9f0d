"""Dynamic Sparsification of L0 pruning: gates learned for every level at once (Li et al. 2022,
Sec. 6.1, Eq. 14-16, appendix D), then one subnetwork per level, as for ``grad``.

Each component ``c`` (attention head, FFN unit, and with scope ``incl_embeddings`` rank component
of the factorised word embeddings) has a hard-concrete gate (:mod:`.l0`) whose location depends
on the sparsity ``s`` the step trains (Eq. 14, with ``t = 1 - s`` the size kept):

    log_alpha_c(s) = alpha_c + (1 - s) * theta_c

``alpha`` and ``theta`` start from one gradient ranking, as the paper starts them (Sec. 6.1:
"we use gradient-based pruning to initialize alpha and theta via Eq. 16"): the ranking of
:class:`~polycompress.compress.pruning.dynamic.DynamicGradientPruner` gives each component the
level ``L_c`` from which it is removed (appendix D: boundaries rounded to the inference levels,
components weighted by their parameter cost), and Eq. 16 is solved so that the gate is closed at
``L_c`` and open one level below:

    log_alpha_c(L_c) = CLOSED,  log_alpha_c(L_c - delta) = OPEN
    =>  theta_c = (OPEN - CLOSED) / delta,  alpha_c = CLOSED - (1 - L_c) * theta_c

From then on ``alpha`` and ``theta`` are trained with the weights: every step draws one level,
samples the gates at it, and adds the sparsity-constrained term of :mod:`.l0`,
``lambda |E[s_removed] - s|`` at the drawn level, with the same learned multiplier. ``theta`` is
kept at or above a quarter of its start, so every gate stays a rising function of the size kept
(a component open at some sparsity is open at every lower one).

**Where ours differs, and why.** (1) ``delta``. Appendix D makes ``delta`` a component's share of
the network (its cost over the total): for an FFN unit of e5-small about 1/27,700, so ``theta``
is about 1.3e5 and one level's step of 0.1 moves a gate's log-odds by about 13,000; at every
sampled level each gate is far past the hard-concrete's clipping points, where its gradient and
the L0 term's are exactly zero, and nothing would be learned. We take ``delta`` to be the
spacing of the levels (the smallest gap between consecutive ones, from 0): a gate then moves
from closed to open over one level, and the components near a drawn level's boundary get
gradients. (2) ``OPEN`` and ``CLOSED``. Eq. 16 uses ``f^-1(1)`` and ``f^-1(0)`` of the gate's
deterministic value (Li et al.'s gate ``clip(sigmoid(alpha) (r - l) + l)``: log-odds of +-ln 11,
about +-2.4, where the sampled gate is still open with probability 0.31 at "0", and open with
0.98 at "1"); we use +-:data:`EDGE`, where the sampled gate is closed (open) with
probability 0.92 one level apart. (3) The subnetworks evaluated. After training, each
component is ranked by the sparsity at which its gate's probability of being open crosses one
half (``s*_c``, from the learned ``alpha_c`` and ``theta_c``), and the levels' structures are cut
from that one ranking by parameter cost, exactly as the gradient ranking is cut
(:func:`~polycompress.compress.pruning.dynamic.nested_structures`): so they are nested and each
meets its target within one component, and each is evaluated with 0/1 gates and is removable
physically. The paper sets ``t`` to the target and reads the gates; with learned gates those
need not meet the target exactly nor be 0/1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from .dynamic import DynamicGradientPruner, rank_removal_levels, removal_levels
from .l0 import BETA, GATE_BETA1, GATE_TRAVEL, LEFT, MULTIPLIER_LR, PENALTY, RIGHT, open_probability, sample_gates
from .schedule import Schedule
from .structured import Structure, costs, install_gates, rank_costs

#: log-odds (hard-concrete ``log_alpha``) of a gate one level inside its open or closed side: at
#: +-4 the sampled gate is exactly 1 (or exactly 0) with probability sigmoid(4 - BETA ln 11) = 0.92
EDGE = 4.0
#: ``theta`` is kept at or above this share of its start (a gate stays rising in the size kept)
THETA_FLOOR = 0.25
#: ``log_alpha`` at which a gate is open with probability one half: ``BETA * log(-LEFT / RIGHT)``
HALF_OPEN = BETA * math.log(-LEFT / RIGHT)


class DynamicL0Pruner(DynamicGradientPruner):
    """Method ``l0`` with ``RunConfig.dynamic`` levels: add :meth:`penalty` to the loss, call
    :meth:`step` after every optimizer step and :meth:`finish` after training; then :meth:`use` a
    level before evaluating it. Before the schedule's start the model trains dense, as for
    ``grad`` with DS; at the start one gradient ranking sets the gates (module docstring)."""

    def __init__(self, model: nn.Module, schedule: Schedule, scope: str = "partial", granularity: str = "per_tensor",
                 importance_batches: Callable[[], Iterable[dict]] | None = None, levels: Sequence[float] = (),
                 seed: int = 0, allocation: str = "global", precision: str = "fp32",
                 penalty_weight: float = PENALTY, gate_lr: float | None = None,
                 multiplier_lr: float = MULTIPLIER_LR, **context):
        super().__init__(model, schedule, scope, granularity, importance_batches=importance_batches, levels=levels,
                         seed=seed, allocation=allocation, precision=precision)
        # delta: the levels' spacing (module docstring, difference 1)
        self.delta = min(b - a for a, b in zip([0.0, *self.levels], self.levels))
        self.theta_start = 2 * EDGE / self.delta
        device = next(model.parameters()).device
        full = Structure.full(model)
        shapes = [tuple(full.heads.shape), tuple(full.units.shape)] + ([(self.embedding.rank,)] if self.embedding is not None else [])
        # filled in by the ranking (rank); until then the model trains dense and these get no gradient
        self.alpha = [nn.Parameter(torch.zeros(shape, device=device)) for shape in shapes]
        self.theta = [nn.Parameter(torch.full(shape, self.theta_start, device=device)) for shape in shapes]
        head_cost, unit_cost, encoder_total = costs(model)
        rank_cost, embedding_total = rank_costs(model) if self.embedding is not None else (0, 0)
        self.group_costs = [head_cost, unit_cost] + ([rank_cost] if self.embedding is not None else [])
        self.total = encoder_total + embedding_total
        if gate_lr is None:  # as for l0: the distance a gate can travel over the trained steps
            gate_lr = GATE_TRAVEL / max(1, schedule.end - schedule.start)
        self.optimizer = torch.optim.Adam([*self.alpha, *self.theta], lr=gate_lr, betas=(GATE_BETA1, 0.999))
        self.multiplier, self.multiplier_lr = penalty_weight, multiplier_lr
        self.learned = False  # whether finish() has cut the levels from the learned gates
        self.initial: dict[float, Structure] = {}  # the levels of the gradient ranking the gates started from
        self.moved: dict[float, int] = {}  # per level: components kept in one of the two and not the other
        self.misses: list[float] = []  # |E[s_removed] - s| at each trained step (the drawn level's)
        # the gates are sampled at every training forward pass once the ranking is made
        for handle in self.handles:
            handle.remove()
        self.handles = install_gates(model, lambda i: self._gates[0][i], lambda i: self._gates[1][i], before=self._draw)
        if self.embedding is not None:
            self.handles.append(self.embedding.register_forward_pre_hook(lambda module, args: self._draw_ranks()))

    def _sampling(self) -> bool:
        return self.ranked_at is not None and not self.learned and self.model.training

    def log_alpha(self, level: float) -> list[torch.Tensor]:
        """Each group's gate locations at sparsity ``level`` (Eq. 14)."""
        return [a + (1.0 - level) * t for a, t in zip(self.alpha, self.theta)]

    def _sample(self, group: int) -> torch.Tensor:
        return sample_gates(self.log_alpha(self.level)[group])

    def _draw(self) -> None:
        if self._sampling():  # one draw per forward pass, shared by every layer
            self._gates = (self._sample(0), self._sample(1))

    def _draw_ranks(self) -> None:
        if self._sampling():
            self.embedding.gate = self._sample(2)
        # otherwise the gate use() set stays (the level's 0/1 rank components)

    def rank(self, step: int = 0) -> None:
        """The gradient ranking (DynamicGradientPruner.rank), then Eq. 16 from its levels."""
        super().rank(step)
        self.initial = dict(self.structures)
        removed = [*removal_levels(self.structures), *([rank_removal_levels(self.structures)]
                                                        if self.embedding is not None else [])]
        with torch.no_grad():
            for alpha, theta, at in zip(self.alpha, self.theta, removed):
                # never removed: closed only one level above the largest
                at = at.clamp(max=self.levels[-1] + self.delta).to(device=alpha.device, dtype=alpha.dtype)
                theta.fill_(self.theta_start)
                alpha.copy_(-EDGE - (1.0 - at) * self.theta_start)

    def expected_sparsity(self, level: float) -> torch.Tensor:
        """E[share of the encoder's (and factorised embeddings') parameters removed] at ``level``."""
        removed = sum((1 - open_probability(log_alpha)).sum() * cost
                      for log_alpha, cost in zip(self.log_alpha(level), self.group_costs))
        return removed / self.total

    def penalty(self) -> torch.Tensor:
        """``lambda |E[s_removed] - s|`` at the level the coming step trains; zero before the ranking."""
        if not self._sampling():
            return self.alpha[0].sum() * 0.0
        return self.multiplier * (self.expected_sparsity(self.level) - self.level).abs()

    def step(self, step: int) -> None:
        """After an optimizer step: move the gates and the multiplier (by the miss at the level
        that trained), then rank at the schedule's start or draw the next step's level."""
        if self._sampling():
            trained = self.level
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            with torch.no_grad():
                for theta in self.theta:
                    theta.clamp_(min=THETA_FLOOR * self.theta_start)
                miss = abs(float(self.expected_sparsity(trained)) - trained)
            self.multiplier += self.multiplier_lr * miss
            self.misses.append(miss)
        super().step(step)

    def crossing(self) -> list[torch.Tensor]:
        """Each component's sparsity ``s*`` at which its gate is open with probability one half:
        components with a lower ``s*`` go first (``alpha + (1 - s*) theta = HALF_OPEN``)."""
        with torch.no_grad():
            return [(1.0 - (HALF_OPEN - a) / t).cpu() for a, t in zip(self.alpha, self.theta)]

    def finish(self) -> None:
        """Cut every level from the learned gates' ranking (module docstring, difference 3) and
        gate with the largest level until :meth:`use` picks another."""
        if self.ranked_at is None:
            self.rank(-1)
        order = self.crossing()
        self._set_levels(order[0], order[1], order[2] if self.embedding is not None else None)
        # how far the learned gates moved each level from the ranking they started from
        self.moved = {level: sum(int((a != b).sum()) for a, b in zip(_parts(self.structures[level]), _parts(start)))
                      for level, start in self.initial.items()}
        self.learned = True
        self.use(self.levels[-1])


def _parts(structure: Structure) -> list[torch.Tensor]:
    """A structure's kept-masks: heads, units and (if any) rank components."""
    return [structure.heads, structure.units, *([structure.ranks] if structure.ranks is not None else [])]
