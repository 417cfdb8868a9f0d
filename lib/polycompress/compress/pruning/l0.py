"""L0-regularised structured pruning with hard-concrete gates (method ``l0``).

Louizos et al. (2018); Li et al. (2022, Sec. 4.2). Every attention head's output and every FFN
unit is multiplied by a gate ``z`` drawn from a hard-concrete distribution with a learned
location ``log_alpha`` (stretch ``l = -0.1``, ``r = 1.1``, temperature ``beta = 2/3``):

    u ~ U(0, 1),  s = sigmoid((log u - log(1 - u) + log_alpha) / beta),  z = clip(s (r - l) + l, 0, 1)

trained jointly with the weights. The expected share of encoder parameters removed is
``E[s] = sum_g cost_g P(z_g = 0) / total`` with ``P(z_g != 0) = sigmoid(log_alpha - beta log(-l / r))``
and head/unit costs as in :mod:`polycompress.compress.pruning.structured`; the loss gains the
sparsity-constrained term of Li et al. (Eq. 11), ``lambda |E[s] - t|``, whose target ``t``
follows the same gradual schedule as IMP and whose multiplier ``lambda`` is learned by ascent
(it grows while the target is missed; Li et al. weigh the term with a fixed lambda_1 = 8, their
appendix A, and name a Lagrange multiplier as an alternative in their footnote 2). Once the
schedule has ended and ``E[s]`` is within :data:`TOLERANCE` of the target, the structure is
fixed and the rest of the run fine-tunes it.
Measured on e5-small, monolingual en, 64 steps: ``E[s]`` meets 0.5 and 0.9 at step 31 and the
evaluated structure removes 0.504 and 0.908 of the encoder. Fixing the structure
(:meth:`L0Pruner.freeze`) uses deterministic gates (:meth:`HardConcrete.deterministic`: the
expected number closed, the rest at their mean), folds them into the weights, zeroes the closed
ones (weights and biases) and removes the gates, leaving a plain masked model that :mod:`polycompress.compress.pruning.compact`
can make physically smaller.

With scope ``incl_embeddings`` the word embeddings are factorised
(:mod:`~polycompress.compress.pruning.embedding_rank`, Li et al. Eq. 3) and each of their rank
components gets a gate of its own, drawn at the start of every forward pass and priced at its
parameter cost (``V + d``, the parameters it stands for; Li et al.'s appendix B weighs a rank
component 1 against a head's 64 x 4 and a unit's 2, so here the embeddings' rank is dearer to
keep and so cut sooner than theirs); the expected sparsity is then over the encoder and the factorised
embeddings together, as for ``grad`` with the same scope.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .embedding_rank import factorise
from .report import SparsityReport
from .schedule import Schedule
from .structured import (
    Structure, costs, encoder_layers, encoder_report, install_gates, pruned_share, rank_costs, structure_masks,
)

LEFT, RIGHT, BETA = -0.1, 1.1, 2.0 / 3.0
#: initial log_alpha: Li et al.'s inference gate starts fully open (sigmoid(3) * 1.2 - 0.1 > 1); ours
#: (:meth:`HardConcrete.deterministic`) closes the ~1% of gates expected closed (P(z = 0) = 0.01 each)
INIT_LOG_ALPHA = 3.0
PENALTY = 10.0  # lambda at the start: a 1-point miss of the target costs 0.1, about a tenth of the task loss
#: lambda is a Lagrange multiplier: after every step it rises by MULTIPLIER_LR * |E[s] - t|
#: (gradient ascent on the term), so a constraint the task loss keeps winning against costs
#: more every step until it is met; see :meth:`L0Pruner.step` for why a fixed lambda fails
MULTIPLIER_LR = 500.0
#: the structure is fixed at the first step from the schedule's end where the expected
#: sparsity is this close to the target (share of the encoder)
TOLERANCE = 0.01
#: Adam's first-moment decay for the gates: 0.5 instead of 0.9, because with the default the
#: gates overshoot a 0.5 target to 0.63 before turning (measured on en, 64 steps)
GATE_BETA1 = 0.5
#: log-odds a gate can travel while the target rises: Adam moves log_alpha by about its learning
#: rate per step whatever the gradient's size, so a fixed rate bounds how far gates get in a
#: short run (0.1 per step closed only a fifth of a 64-step run's encoder, measured); the rate
#: is GATE_TRAVEL / (schedule.end - schedule.start), from 3 to well below the closing point
GATE_TRAVEL = 8.0


def sample_gates(log_alpha: torch.Tensor) -> torch.Tensor:
    """One hard-concrete draw per gate of location ``log_alpha`` (differentiable in it)."""
    u = torch.rand_like(log_alpha).clamp(1e-6, 1 - 1e-6)
    s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + log_alpha) / BETA)
    return (s * (RIGHT - LEFT) + LEFT).clamp(0.0, 1.0)


def open_probability(log_alpha: torch.Tensor) -> torch.Tensor:
    """P(z != 0) of gates of location ``log_alpha`` (differentiable)."""
    return torch.sigmoid(log_alpha - BETA * math.log(-LEFT / RIGHT))


class HardConcrete(nn.Module):
    """A tensor of hard-concrete gates of the given shape."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.log_alpha = nn.Parameter(torch.full(shape, INIT_LOG_ALPHA))

    def sample(self) -> torch.Tensor:
        return sample_gates(self.log_alpha)

    @torch.no_grad()
    def deterministic(self, draws: int = 256) -> torch.Tensor:
        """Evaluation gates: as many closed as the distribution expects (``round(sum P(z = 0))``,
        those of lowest ``log_alpha``), the others at their mean ``E[z]``.

        The count is imposed as Wang et al. (2020) and Xia et al. (2022, CoFi) do: the clipped
        mean of Louizos et al. alone can leave every gate open while half are expected closed
        (a gate with ``P(z = 0) = 0.5`` has a mean of about 0.1) and closes any gate whose
        ``sigmoid(log_alpha) < 1/12`` though it is still open with probability up to 0.3
        (measured: 97% of en's encoder closed at an expected 90%). ``E[z]``, positive for
        every finite ``log_alpha``, is estimated from ``draws`` seeded draws (an estimate: gates of
        equal ``log_alpha`` get means a few hundredths apart).
        """
        generator = torch.Generator().manual_seed(0)  # on the CPU: the same draws on every device
        u = torch.rand((draws, *self.log_alpha.shape), generator=generator).clamp(1e-6, 1 - 1e-6)
        u = u.to(self.log_alpha.device)
        s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + self.log_alpha.detach()) / BETA)
        z = (s * (RIGHT - LEFT) + LEFT).clamp(0.0, 1.0).mean(0).clamp_min(1e-6).flatten()
        closed = int(round(float((1 - self.open_probability()).sum())))
        if closed:
            z[torch.argsort(self.log_alpha.detach().flatten(), stable=True)[:closed]] = 0.0
        return z.view_as(self.log_alpha)

    def open_probability(self) -> torch.Tensor:
        """P(z != 0) for every gate (differentiable)."""
        return open_probability(self.log_alpha)

    def forward(self) -> torch.Tensor:
        return self.sample() if self.training else self.deterministic()


class L0Pruner:
    """Method ``l0``: gates on heads and FFN units; add :meth:`penalty` to the loss, call
    :meth:`step` after every optimizer step and :meth:`finish` once training is over."""

    def __init__(self, model: nn.Module, schedule: Schedule, scope: str = "partial", granularity: str = "per_tensor",
                 penalty_weight: float = PENALTY, gate_lr: float | None = None,
                 multiplier_lr: float = MULTIPLIER_LR, **context):
        if scope not in ("partial", "incl_embeddings"):
            raise ValueError(f"unknown scope {scope!r}")
        self.model, self.schedule, self.scope, self.granularity = model, schedule, scope, granularity
        self.multiplier, self.multiplier_lr = penalty_weight, multiplier_lr
        # the embeddings' rank gated with the heads and units: factorised before the optimizer
        # is made (the pruner is made first), the same function at step 0
        self.embedding = factorise(model) if scope == "incl_embeddings" else None
        full = Structure.full(model)
        device = next(model.parameters()).device  # the gates multiply activations there
        self.head_gates = HardConcrete(tuple(full.heads.shape)).to(device)
        self.unit_gates = HardConcrete(tuple(full.units.shape)).to(device)
        self.rank_gates = HardConcrete((self.embedding.rank,)).to(device) if self.embedding is not None else None
        if gate_lr is None:
            gate_lr = GATE_TRAVEL / max(1, schedule.end - schedule.start)
        self.optimizer = torch.optim.Adam([g.log_alpha for g in self._gate_sets()], lr=gate_lr,
                                          betas=(GATE_BETA1, 0.999))
        self.head_cost, self.unit_cost, self.encoder_total = costs(model)
        # (parameters of one rank component, of the factorised embeddings): 0 without them
        self.rank_cost, self.embedding_total = rank_costs(model) if self.embedding is not None else (0, 0)
        self.steps_done = 0
        self.current = 0.0  # expected sparsity at the last step (deterministic after finish)
        self.history: list[tuple[int, float]] = []  # (step, target) where the target changed
        self.structure: Structure | None = None
        self.masks: dict = {}
        self._z: tuple[torch.Tensor, torch.Tensor] | None = None
        self.frozen_at: int | None = None  # the step after which the structure was fixed
        self.handles = self._install()

    def _gate_sets(self) -> list[HardConcrete]:
        return [self.head_gates, self.unit_gates, *([self.rank_gates] if self.rank_gates is not None else [])]

    def _install(self) -> list:
        def draw() -> None:  # one draw per forward pass, shared by every layer's gates
            self.head_gates.train(self.model.training)
            self.unit_gates.train(self.model.training)
            self._z = (self.head_gates(), self.unit_gates())

        handles = install_gates(self.model, lambda i: self._z[0][i], lambda i: self._z[1][i], before=draw)
        if self.embedding is not None:
            def draw_ranks(module, args) -> None:  # the embeddings run before the first layer's draw
                self.rank_gates.train(self.model.training)
                module.gate = self.rank_gates()

            handles.append(self.embedding.register_forward_pre_hook(draw_ranks))
        return handles

    @property
    def frozen(self) -> bool:
        """Whether the structure is fixed (gates folded into the weights and removed)."""
        return self.structure is not None

    def expected_sparsity(self) -> torch.Tensor:
        """E[share of encoder parameters removed] under the current gate distributions."""
        closed_heads = (1 - self.head_gates.open_probability()).sum()
        closed_units = (1 - self.unit_gates.open_probability()).sum()
        removed = closed_heads * self.head_cost + closed_units * self.unit_cost
        if self.rank_gates is not None:
            removed = removed + (1 - self.rank_gates.open_probability()).sum() * self.rank_cost
        return removed / (self.encoder_total + self.embedding_total)

    def target(self) -> float:
        return self.schedule.sparsity(self.steps_done)

    def penalty(self) -> torch.Tensor:
        """``lambda |E[s] - t|`` for the step about to be taken (added to the task loss); zero
        before the schedule starts, where the target is no constraint yet (pushing the gates
        further open would only lengthen the way they must travel once it starts)."""
        if self.steps_done < self.schedule.start or self.frozen:
            return self.expected_sparsity() * 0.0
        return self.multiplier * (self.expected_sparsity() - self.target()).abs()

    def step(self, step: int) -> None:
        """After an optimizer step: move the gates, raise the multiplier by the miss, and fix
        the structure once the schedule has ended with the expected sparsity within
        :data:`TOLERANCE` of the target (or at the last step, whatever the miss).

        Why a learned multiplier: with a fixed lambda each gate's share of the term is tiny
        (an FFN unit is 1/27,000 of e5-small's encoder), so in a short run the task loss's
        gradient keeps most gates open and the expected sparsity stalls well below the target
        (measured: 24-50% for targets 0.5 and 0.9 alike, method version 2). The multiplier
        grows while the target is missed, so the constraint wins in the end (Xia et al. 2022
        learn theirs the same way, by ascent). Why fix the structure: the rest of the run then
        fine-tunes the very subnetwork that is evaluated, as gradient pruning does, instead of
        weights used to random gates."""
        if self.frozen:  # keep the removed heads and units at exactly zero (Adam's momentum)
            with torch.no_grad():
                for param, mask in self.masks.values():
                    param.mul_(mask)
            self.steps_done = step + 1
            return
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.schedule.is_update_step(step):
            self.history.append((step, self.schedule.sparsity(step)))
        self.steps_done = step + 1
        with torch.no_grad():
            self.current = float(self.expected_sparsity())
            miss = abs(self.current - self.schedule.sparsity(step))
            if step >= self.schedule.start:
                self.multiplier += self.multiplier_lr * miss
        if step >= self.schedule.end and miss <= TOLERANCE:
            self.freeze()
            self.frozen_at = step

    @torch.no_grad()
    def freeze(self) -> None:
        """Deterministic gates folded into the weights; closed gates pruned; gates removed."""
        z_heads, z_units = self.head_gates.deterministic(), self.unit_gates.deterministic()
        for i, layer in enumerate(encoder_layers(self.model)):
            size = layer.attention.self.attention_head_size
            layer.attention.output.dense.weight.mul_(z_heads[i].repeat_interleave(size))
            layer.output.dense.weight.mul_(z_units[i])
        ranks = None
        if self.embedding is not None:
            z_ranks = self.rank_gates.deterministic()
            self.embedding.left.mul_(z_ranks)  # a component's column of ``left`` carries its gate
            self.embedding.gate = None
            ranks = (z_ranks > 0).cpu()
        self.structure = Structure((z_heads > 0).cpu(), (z_units > 0).cpu(), ranks)
        self.masks = structure_masks(self.model, self.structure)
        for param, mask in self.masks.values():
            param.mul_(mask)
        for handle in self.handles:
            handle.remove()
        self.handles = []
        self.current = pruned_share(self.model, self.structure)

    def finish(self) -> None:
        """Fix the structure if training ended before it was (see :meth:`step`)."""
        if not self.frozen:
            self.freeze()

    def report(self) -> SparsityReport:
        # with the embeddings' rank gated, their factors are part of the scope (the masks name them)
        return encoder_report(self.model, self.granularity, self.schedule.final,
                              self.masks if self.embedding is not None else None)
