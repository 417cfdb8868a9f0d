"""The gradual pruning schedule of Zhu & Gupta (2017).

Sparsity rises from ``initial`` to ``final`` along a cubic between steps ``start`` and ``end``:

    s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (t_end - t0)) ** 3

and masks are recomputed every ``frequency`` optimizer steps from ``start`` until ``end`` (the
last update at the last multiple of ``frequency`` from ``start`` not past ``end``: when ``end -
start`` is not a multiple, as in the paper's 15,000-sentence row, 700 to 1,800 every 150, the final
sparsity is reached at 1,750 only approximately, 97.99% for 98%, as TensorFlow's model_pruning
does too), then held. Steps count optimizer updates from 0.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Appendix A.2 of Ogueji et al. (2022): training sentences -> (start, end, frequency) in steps.
PAPER_SCHEDULES: dict[int, tuple[int, int, int]] = {
    100: (10, 60, 10),
    1_000: (100, 300, 50),
    5_000: (500, 1_200, 100),
    10_000: (500, 1_200, 100),
    15_000: (700, 1_800, 150),
    20_000: (1_000, 2_400, 200),
}

#: For runs the paper's table does not cover: prune between these fractions of training, in
#: this many mask updates. The paper's runs (60 epochs) finish pruning within the first 10% of
#: training and then fine-tune for the remaining 90%; our short CPU runs cannot afford a
#: schedule that early and that short, so we prune over the first half and keep the second
#: half for recovery, with 6 updates (the paper uses 5 to 8).
DERIVED_START, DERIVED_END, DERIVED_UPDATES = 0.1, 0.5, 6


@dataclass(frozen=True)
class Schedule:
    start: int
    end: int
    frequency: int
    final: float
    initial: float = 0.0

    def __post_init__(self) -> None:
        if not (0 <= self.start <= self.end and self.frequency >= 1):
            raise ValueError(f"bad schedule {self}")

    def sparsity(self, step: int) -> float:
        """Target sparsity at optimizer step ``step``."""
        if step < self.start:
            return self.initial
        if step >= self.end or self.end == self.start:
            return self.final
        progress = (step - self.start) / (self.end - self.start)
        return self.final + (self.initial - self.final) * (1.0 - progress) ** 3

    def is_update_step(self, step: int) -> bool:
        """Whether masks are recomputed after optimizer step ``step``."""
        return self.start <= step <= self.end and (step - self.start) % self.frequency == 0

    def update_steps(self) -> list[int]:
        return [s for s in range(self.start, self.end + 1) if self.is_update_step(s)]

    @classmethod
    def held(cls, final: float) -> "Schedule":
        """A schedule that never updates (its first update lies beyond any run): masks set once
        with :meth:`MagnitudePruner.prune_to` are only held (prune_at "before" and "after")."""
        return cls(HELD, HELD, 1, final)


#: the first update step of :meth:`Schedule.held`
HELD = 10**12


def paper_schedule(train_sentences: int, final: float) -> Schedule:
    """The paper's schedule for one of its training sizes (Appendix A.2)."""
    if train_sentences not in PAPER_SCHEDULES:
        raise ValueError(f"the paper has no schedule for {train_sentences} training sentences; "
                         f"it has {sorted(PAPER_SCHEDULES)} (use schedule='derived')")
    start, end, freq = PAPER_SCHEDULES[train_sentences]
    return Schedule(start, end, freq, final)


def derived_schedule(total_steps: int, final: float) -> Schedule:
    """Prune over [10%, 50%] of ``total_steps`` in 6 updates (see :data:`DERIVED_START`)."""
    if total_steps < 2:
        raise ValueError(f"cannot schedule pruning in {total_steps} step(s)")
    start = int(DERIVED_START * total_steps)
    end = max(start + 1, int(DERIVED_END * total_steps))
    frequency = max(1, (end - start) // DERIVED_UPDATES)
    end = start + frequency * ((end - start) // frequency)  # the last update lands on `end`
    return Schedule(start, end, frequency, final)


def run_schedule(kind: str, steps: int, largest_train_size: int, final: float, prune_at: str = "during") -> Schedule:
    """The schedule a run prunes on: ``kind`` "paper" (appendix A.2, by the training size of the
    union's largest language: our reading, the paper does not say which row its multilingual
    model used) or "derived" (by ``steps``); held (masks set once) unless pruned during training.
    One definition for the runner (:mod:`polycompress.experiment`) and the planner."""
    if prune_at != "during":
        return Schedule.held(final)
    return paper_schedule(largest_train_size, final) if kind == "paper" else derived_schedule(steps, final)
