"""L0 pruning with one subnetwork per language: Li et al.'s (2022, Sec. 4.2.1) improved L0 in the
``non_shared`` setting (method ``l0``, ``subnetworks="non_shared"``).

Every training language gets its own hard-concrete gates on heads and FFN units
(:class:`~polycompress.compress.pruning.l0.HardConcrete`), over shared weights. Each training batch
holds one language's sentences and runs through a draw of that language's gates. The loss gains,
for the step about to be taken (Eq. 13 without the MLM term, which is our task loss):

- the sparsity constraint of Eq. 11 for every language, ``sum_i lambda_i |E[s_i] - t|``, each
  multiplier learned by ascent as in the shared method (:mod:`polycompress.compress.pruning.l0`
  says why a fixed one stalls in a short run);
- the diversity term of Eq. 12, ``lambda_2 ||P . G G^T . (1 - I)||_1``: ``G`` stacks the
  languages' gate vectors (here each gate's probability of being open, the differentiable stand-in
  for the gate; a language whose structure is fixed enters with its fixed 0/1 gates), and
  ``P_ij`` is 0 for two languages of one family, 1 otherwise (their linguistic prior). We divide
  the sum by the number of gates and of language pairs, so that the term is the mean share of
  gates two languages of different families both keep open, in [0, 1], whatever the model's size
  and the number of languages. That puts ``lambda_2`` on another scale than the paper's raw sum
  (their 1, Appendix A, weighs a sum over some 10^4 gates and 10^3 language pairs): our default
  :data:`DIVERSITY` is 1 on the normalised term, a choice of ours, not their value.

Each language's structure is fixed, as in the shared method, once the schedule has ended and its
expected sparsity is within :data:`~polycompress.compress.pruning.l0.TOLERANCE` of the target;
from then on its batches run through 0/1 gates of that structure and its gates stop training.

Where ours differs from Li et al., and why: (1) the shared method folds its deterministic gate
values (between 0 and 1) into the weights when it fixes the structure; with weights shared by
every language that is impossible, so a fixed language's kept components pass with gate 1
(evaluation and the rest of training alike). (2) Li et al. tune only the gates during the first
part of pre-training (150K steps); a fine-tuning run of a few hundred steps has no such phase.
(3) Like every L0 run here, the constraint's target follows IMP's gradual schedule.

With scope ``incl_embeddings`` the word embeddings are factorised
(:mod:`~polycompress.compress.pruning.embedding_rank`) and every language also gets a gate per rank
component, priced at its parameter cost in that language's expected sparsity (over the encoder and
the factors) and part of its gate vector in the diversity term.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .embedding_rank import factorise
from .l0 import GATE_BETA1, GATE_TRAVEL, MULTIPLIER_LR, PENALTY, TOLERANCE, HardConcrete
from .report import SparsityReport
from .schedule import Schedule
from .structured import Structure, costs, encoder_report, install_gates, pruned_share, rank_costs, structure_masks

#: lambda_2 of Eq. 13 on our normalised diversity term (see the module docstring: not on the
#: scale of the paper's 1): a gate-sharing share of 0.5 costs 0.5, the size of a task loss
DIVERSITY = 1.0


def prior(languages: Sequence[str], families: Mapping[str, str] | None) -> torch.Tensor:
    """Li et al.'s ``P`` (languages x languages): 0 for two languages of one family, 1 otherwise
    (without ``families``: all ones, their default). A family of None relates a language to no
    other (the caller maps unknown families, isolates and pseudo-families to None)."""
    n = len(languages)
    out = torch.ones(n, n)
    if families:
        for i, a in enumerate(languages):
            for j, b in enumerate(languages):
                fa, fb = families.get(a), families.get(b)
                if fa is not None and fa == fb:
                    out[i, j] = 0.0
    return out


def diversity(gates: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Eq. 12 on ``gates`` (languages x gates, each in [0, 1]) with prior ``p``: the off-diagonal
    entries of ``P . G G^T`` summed, divided by the number of gates and of ordered language pairs."""
    n, size = gates.shape
    if n < 2:
        return gates.sum() * 0.0
    gram = gates @ gates.T / size
    off = p.to(gates.device) * gram * (1 - torch.eye(n, device=gates.device))
    return off.sum() / (n * (n - 1))


class LanguageL0Pruner:
    """Method ``l0`` with ``subnetworks="non_shared"``: call :meth:`use` (or :meth:`use_group`)
    before every batch, add :meth:`penalty` to its loss, :meth:`step` after every optimizer step,
    :meth:`finish` once training is over. ``families`` (language -> family) sets the prior."""

    def __init__(self, model: nn.Module, schedule: Schedule, scope: str = "partial", granularity: str = "per_tensor",
                 languages: Sequence[str] = (), families: Mapping[str, str] | None = None,
                 penalty_weight: float = PENALTY, gate_lr: float | None = None, multiplier_lr: float = MULTIPLIER_LR,
                 diversity_weight: float = DIVERSITY, **context):
        if scope not in ("partial", "incl_embeddings"):
            raise ValueError(f"unknown scope {scope!r}")
        if not languages:
            raise ValueError("non-shared subnetworks need the training languages")
        self.model, self.schedule, self.scope, self.granularity = model, schedule, scope, granularity
        self.languages = list(languages)
        self.prior = prior(self.languages, families)
        self.diversity_weight, self.multiplier_lr = diversity_weight, multiplier_lr
        self.multipliers = {code: penalty_weight for code in self.languages}
        # factorised before the optimizer is made (the pruner is made first): the same function
        self.embedding = factorise(model) if scope == "incl_embeddings" else None
        full = Structure.full(model)
        device = next(model.parameters()).device
        self.head_gates = nn.ModuleDict({c: HardConcrete(tuple(full.heads.shape)) for c in self.languages}).to(device)
        self.unit_gates = nn.ModuleDict({c: HardConcrete(tuple(full.units.shape)) for c in self.languages}).to(device)
        self.rank_gates = (nn.ModuleDict({c: HardConcrete((self.embedding.rank,)) for c in self.languages}).to(device)
                           if self.embedding is not None else None)
        if gate_lr is None:
            gate_lr = GATE_TRAVEL / max(1, schedule.end - schedule.start)
        sets = [self.head_gates, self.unit_gates, *([self.rank_gates] if self.rank_gates is not None else [])]
        self.optimizer = torch.optim.Adam([g.log_alpha for m in sets for g in m.values()],
                                          lr=gate_lr, betas=(GATE_BETA1, 0.999))
        self.head_cost, self.unit_cost, self.encoder_total = costs(model)
        # (parameters of one rank component, of the factorised embeddings): 0 without them
        self.rank_cost, self.embedding_total = rank_costs(model) if self.embedding is not None else (0, 0)
        self.steps_done = 0
        self.current = 0.0  # mean over languages of the expected (after finish: the fixed) sparsity
        self.history: list[tuple[int, float]] = []
        self.structures: dict[str, Structure] = {}  # the fixed ones
        self.frozen_at: dict[str, int] = {}
        self.active = self.languages[0]
        self._z: tuple[torch.Tensor, torch.Tensor] | None = None
        self.handles = install_gates(model, lambda i: self._z[0][i], lambda i: self._z[1][i], before=self._draw)
        if self.embedding is not None:  # the embeddings run before the first layer's draw
            self.handles.append(self.embedding.register_forward_pre_hook(lambda module, args: self._draw_ranks()))

    def _draw_ranks(self) -> None:
        """The active language's rank gates for this forward pass (as :meth:`_draw`)."""
        code = self.active
        if code in self.structures:
            ranks = self.structures[code].ranks
            self.embedding.gate = ranks.to(device=self.embedding.left.device, dtype=self.embedding.left.dtype)
            return
        gates = self.rank_gates[code]
        gates.train(self.model.training)
        self.embedding.gate = gates()

    def _draw(self) -> None:
        """The active language's gates for this forward pass: fixed 0/1, or a draw (training) or
        the deterministic gates (evaluation) of its distributions."""
        code = self.active
        if code in self.structures:
            s = self.structures[code]
            device = next(self.model.parameters()).device
            self._z = (s.heads.float().to(device), s.units.float().to(device))
            return
        heads, units = self.head_gates[code], self.unit_gates[code]
        heads.train(self.model.training)
        units.train(self.model.training)
        self._z = (heads(), units())

    def use(self, code: str) -> None:
        """Run the model through ``code``'s subnetwork from now on."""
        if code not in self.head_gates:
            raise KeyError(f"{code!r} is not a training language of this pruner ({self.languages})")
        self.active = code

    def use_group(self, index: int) -> None:
        """:meth:`use` by position in the training languages (the training loop's batch groups)."""
        self.use(self.languages[index])

    def expected_sparsity(self, code: str) -> torch.Tensor:
        """E[share of encoder parameters removed] by ``code``'s gates."""
        closed_heads = (1 - self.head_gates[code].open_probability()).sum()
        closed_units = (1 - self.unit_gates[code].open_probability()).sum()
        removed = closed_heads * self.head_cost + closed_units * self.unit_cost
        if self.rank_gates is not None:
            removed = removed + (1 - self.rank_gates[code].open_probability()).sum() * self.rank_cost
        return removed / (self.encoder_total + self.embedding_total)

    def open_probabilities(self) -> torch.Tensor:
        """languages x gates: each gate's probability of being open (heads, then units, then rank
        components if gated); for a language whose structure is fixed, its 0/1 gates (constants:
        its gates train no more)."""
        rows = []
        for c in self.languages:
            if c in self.structures:
                s = self.structures[c]
                device = self.head_gates[c].log_alpha.device
                parts = [s.heads.flatten(), s.units.flatten(), *([s.ranks] if s.ranks is not None else [])]
                rows.append(torch.cat(parts).float().to(device))
            else:
                parts = [self.head_gates[c].open_probability().flatten(), self.unit_gates[c].open_probability().flatten()]
                if self.rank_gates is not None:
                    parts.append(self.rank_gates[c].open_probability())
                rows.append(torch.cat(parts))
        return torch.stack(rows)

    def target(self) -> float:
        return self.schedule.sparsity(self.steps_done)

    def penalty(self) -> torch.Tensor:
        """Eq. 11 over the languages not yet fixed plus Eq. 12 (see the module docstring); zero
        before the schedule starts."""
        zero = self.open_probabilities().sum() * 0.0
        if self.steps_done < self.schedule.start or len(self.structures) == len(self.languages):
            return zero
        t = self.target()
        constraint = sum((self.multipliers[c] * (self.expected_sparsity(c) - t).abs()
                          for c in self.languages if c not in self.structures), zero)
        return constraint + self.diversity_weight * diversity(self.open_probabilities(), self.prior)

    def step(self, step: int) -> None:
        """After an optimizer step: move the gates, raise each language's multiplier by its
        miss, and fix a language's structure once the schedule has ended and its expected
        sparsity is within TOLERANCE of the target."""
        self.steps_done = step + 1
        if len(self.structures) == len(self.languages):
            return
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.schedule.is_update_step(step):
            self.history.append((step, self.schedule.sparsity(step)))
        target = self.schedule.sparsity(step)
        with torch.no_grad():
            for code in self.languages:
                if code in self.structures:
                    continue
                miss = abs(float(self.expected_sparsity(code)) - target)
                if step >= self.schedule.start:
                    self.multipliers[code] += self.multiplier_lr * miss
                if step >= self.schedule.end and miss <= TOLERANCE:
                    self.fix(code)
                    self.frozen_at[code] = step
        self.current = sum(self.achieved(c) for c in self.languages) / len(self.languages)

    @torch.no_grad()
    def fix(self, code: str) -> None:
        """Fix ``code``'s structure: the gates its deterministic draw closes are removed."""
        heads, units = self.head_gates[code].deterministic(), self.unit_gates[code].deterministic()
        ranks = (self.rank_gates[code].deterministic() > 0).cpu() if self.rank_gates is not None else None
        self.structures[code] = Structure((heads > 0).cpu(), (units > 0).cpu(), ranks)

    def finish(self) -> None:
        """Fix every structure not fixed yet; the gates stay for evaluation, one language at a time."""
        for code in self.languages:
            if code not in self.structures:
                self.fix(code)
        self.current = sum(self.achieved(c) for c in self.languages) / len(self.languages)

    def achieved(self, code: str) -> float:
        """Share of the encoder's parameters ``code``'s subnetwork drops (expected, until fixed)."""
        if code in self.structures:
            return pruned_share(self.model, self.structures[code])
        with torch.no_grad():
            return float(self.expected_sparsity(code))

    def shared_structure(self) -> Structure:
        """What every language dropped: the part of the encoder no subnetwork uses."""
        return Structure.union(self.structures.values())

    def report(self) -> SparsityReport:
        """Zeros over the encoder once what *no* language uses is removed (each language's own
        share is :meth:`achieved`)."""
        masks = structure_masks(self.model, self.shared_structure())
        return encoder_report(self.model, self.granularity, self.schedule.final, masks)
