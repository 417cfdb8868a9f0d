"""Run a grid on a Ray cluster: one Ray task per run, the same run folders as the serial runner.

    polycompress run paper --out /shared/results/paper --executor ray --address auto \\
        --cpus-per-run 4 --gpus-per-run 1

Every task calls :func:`polycompress.runner.execute_run`, the code path of the serial runner, so
a run's folder is written the same way (an attempt folder renamed into ``runs/<run_id>`` when it
ends) and a grid is resumed by the same command. The driver (this process) submits only runs
that are not finished, rebuilds the tables as each task returns and once at the end.

What Ray adds and what it needs:

- A task whose worker process dies (killed, out of memory, node lost) is retried by Ray itself,
  ``max_retries`` times; a Python exception inside a run is not retried (``execute_run`` records
  it in ``error.json``, as the serial runner does, and the next invocation tries again).
- ``OUT`` must be one folder that every node and the driver see (a shared file system): tasks
  write the run folders, the driver reads them. A task's run folder missing on the driver is an
  error that says so.
- Every node needs this package, the corpus mirror (``POLYCOMPRESS_DATA``) and the model cache at
  the same paths; environment variables of the driver do not travel to a cluster started apart.
- A killed worker's children (the notebook's kernel) outlive it unless the cluster was started
  with ``RAY_kill_child_processes_on_worker_exit_with_raylet_subreaper=true``; a cluster this module
  starts itself (no ``address``) gets it. (The kernel also exits by itself a second or so after
  its parent is gone: ipykernel polls for that.)

Ray is imported here only, and this module only by ``--executor ray``: the serial runner works
without Ray installed.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

from .config import RunConfig
from .runner import (
    Execution, GridSummary, RunOutcome, clear_attempts, collect, execute_run, is_done, record_failure, run_dir,
)

#: set in the environment of a cluster this module starts, so that the raylet, as subreaper,
#: kills what a dead worker leaves behind (the papermill kernel)
SUBREAPER = "RAY_kill_child_processes_on_worker_exit_with_raylet_subreaper"
#: Ray's own default: retries of a task whose worker died
MAX_RETRIES = 3


def _task(config: RunConfig, out: str, execution: Execution) -> RunOutcome:
    """One run, inside a Ray worker: the serial runner's code path."""
    return execute_run(config, Path(out), execution)


def run_grid_ray(configs: list[RunConfig], out: Path | str, execution: Execution | None = None, *,
                 address: str | None = None, cpus_per_run: float = 1, gpus_per_run: float = 0,
                 max_retries: int = MAX_RETRIES, progress: bool = True) -> GridSummary:
    """Run every config not yet finished under ``out`` as Ray tasks; see the module docstring.

    ``address`` is a running cluster's (``auto``: the one started on this machine with ``ray
    start``); None starts a local one with every core of this machine, unless this process is
    connected to Ray already (then that connection is used and left open). Each task reserves
    ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs; torch in the run uses
    ``int(cpus_per_run)`` threads unless ``execution.threads`` says otherwise.
    """
    import ray

    if cpus_per_run <= 0 or gpus_per_run < 0:
        raise ValueError(f"cpus_per_run must be positive and gpus_per_run not negative "
                         f"(got {cpus_per_run}, {gpus_per_run})")
    execution = execution or Execution()
    if execution.device == "cuda" and gpus_per_run == 0:
        raise ValueError("device 'cuda' needs --gpus-per-run above 0: Ray shows a task only the GPUs it reserved")
    if execution.device == "cpu" and gpus_per_run > 0:
        raise ValueError("device 'cpu' with --gpus-per-run above 0 would hold GPUs that no run uses")
    # a task that reserved no GPU computes on the CPU, whatever the node has (auto would find one)
    device = "cpu" if gpus_per_run == 0 else ("cuda" if execution.device == "auto" else execution.device)
    execution = Execution(device=device, threads=execution.threads or max(1, int(cpus_per_run)),
                          cell_timeout=execution.cell_timeout, stream=execution.stream)

    out = Path(out).resolve()  # workers do not share the driver's working directory
    (out / "runs").mkdir(parents=True, exist_ok=True)
    pending = [c for c in configs if not is_done(out, c)]
    skipped = len(configs) - len(pending)
    start = time.perf_counter()
    started = False
    if not ray.is_initialized():
        if address is None:
            os.environ.setdefault(SUBREAPER, "true")  # inherited by the raylet ray.init starts
        # "local": a new cluster; Ray's own default (None) would join one that `ray start` began
        # here, or fail on the address a stopped one left behind in /tmp/ray
        ray.init(address=address or "local", include_dashboard=False, log_to_driver=execution.stream,
                 logging_level=logging.WARNING)
        started = True
    ran, failed = 0, []
    refs: dict = {}  # task -> its run, while it has not returned
    try:
        clear_attempts(out)
        task = ray.remote(_task).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=max_retries,
                                         retry_exceptions=False, name="polycompress-run")
        refs = {task.remote(config, str(out), execution): config for config in pending}
        bar = tqdm(total=len(pending), desc="grid (ray)", unit="run", disable=not progress)
        while refs:
            finished, _ = ray.wait(list(refs), num_returns=1)
            for ref in finished:
                config = refs.pop(ref)
                try:
                    outcome: RunOutcome = ray.get(ref)
                except ray.exceptions.RayError as err:  # its workers died max_retries + 1 times
                    error = f"{type(err).__name__}: {str(err)[:2000]}"
                    record_failure(out, config, error)
                    outcome = RunOutcome(config.run_id, "failed", error)
                if outcome.status != "failed" and not is_done(out, config):
                    raise RuntimeError(
                        f"run {config.run_id} finished on {outcome.attempt.get('host')} but "
                        f"{run_dir(out, config)}/done.json is not there: is {out} on a file system every "
                        f"node shares, at the same path?")
                if outcome.status == "failed":
                    failed.append(config.run_id)
                    tqdm.write(f"run {config.run_id} failed: {str(outcome.error)[:300]}", file=sys.stderr)
                elif outcome.status == "ran":
                    ran += 1
                else:  # another attempt of the same run had finished it
                    skipped += 1
                collect(out)
                bar.update(1)
        bar.close()
    except BaseException:
        # the driver is going away (Ctrl-C, an error): stop the runs it sent; the next
        # invocation resumes from the finished ones
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()
    clear_attempts(out)
    collect(out)
    return GridSummary(ran, skipped, failed, time.perf_counter() - start, out / "results.parquet")
