"""Run a grid: one papermill execution of the experiment notebook per run, resumable.

``OUT/runs/<run_id>/`` holds each run's files and its executed notebook; ``OUT/results.parquet``
(with ``OUT/predictions.parquet`` and ``OUT/embedding_rows.parquet``) is rebuilt (atomically) from
every finished run of the current engine version after each run, so a grid killed at any point
and started again finishes with no lost and no duplicated rows. A failing run writes
``error.json`` and the grid goes on; it is tried again on the next invocation.

One run is executed by :func:`execute_run`, whichever executor sends it: the serial loop here
(:func:`run_grid`, the default) or a Ray cluster (:mod:`polycompress.ray_executor`). An attempt
writes into a folder of its own, ``OUT/.attempts/<run_id>.<token>/``, and only a finished
attempt's folder is renamed to ``OUT/runs/<run_id>/`` (a rename within one file system is
atomic). So ``runs/`` never holds half a run: an attempt killed by ``kill -9`` or by a Ray worker's
death leaves its files under ``.attempts/`` (cleared when a grid starts and ends), and a retried
attempt never shares a folder with a previous one that may still be writing (a kernel that
outlived its worker).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from .artifacts import write_json, write_parquet
from .config import (DERIVED_KEYS, DYNAMIC_VERSION, ENGINE_VERSION, LATER_COLUMNS, METHOD_VERSIONS, VERSION_KEYS, RunConfig,
                     fill_missing, versions)
from .experiment import PREDICTION_COLUMNS, RESULT_COLUMNS
from .compress.pruning.rows import ROW_COLUMNS

NOTEBOOK = Path(__file__).resolve().parents[2] / "book" / "experiments" / "finetune_prune.md"
#: where attempts write before they are published into ``runs/`` (beside it: the same file system)
ATTEMPTS = ".attempts"
#: papermill's limit on one notebook cell, in seconds: a hung kernel fails the run instead of
#: holding a worker for ever. The training cell is the long one; 48 h is above the longest run
#: of the presets on one GPU by ``polycompress plan paper`` (about 26 h on an H100, measured step).
CELL_TIMEOUT = 48 * 3600


@dataclass(frozen=True)
class Execution:
    """How runs execute, as opposed to what they compute (:class:`RunConfig`): none of this is
    part of a run id. ``threads`` None keeps torch's default (one per core); ``cell_timeout`` in
    seconds (None: no limit); ``stream`` sends the run's own progress bars to stderr."""

    device: str = "auto"  # "auto", "cpu" or "cuda" (polycompress.training.DEVICES)
    threads: int | None = None
    cell_timeout: float | None = CELL_TIMEOUT
    stream: bool = True


@dataclass
class GridSummary:
    ran: int
    skipped: int
    failed: list[str]
    seconds: float
    results: Path


@dataclass
class RunOutcome:
    """What :func:`execute_run` did: ``status`` is "ran", "failed" (``error.json`` published) or
    "skipped" (finished already, by this or another attempt)."""

    run_id: str
    status: str
    error: str | None = None
    seconds: float = 0.0
    attempt: dict = field(default_factory=dict)  # host, pid and start of the attempt


def run_dir(out: Path, config: RunConfig) -> Path:
    return Path(out) / "runs" / config.run_id


def is_done(out: Path, config: RunConfig) -> bool:
    return (run_dir(out, config) / "done.json").is_file()


def execute(config: RunConfig, directory: Path, notebook: Path = NOTEBOOK, stream: bool = True,
            execution: Execution | None = None) -> None:
    """Execute the experiment notebook for ``config``; the executed copy lands in ``directory``.

    ``execution`` (device, threads) reaches the notebook as parameters outside its
    :class:`RunConfig`, so the run id stays what the parameters alone give.
    """
    import jupytext
    import papermill

    execution = execution or Execution(stream=stream)
    directory = directory.resolve()  # the kernel runs inside the folder: paths must not be relative
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "input.ipynb"
    jupytext.write(jupytext.read(notebook), source)
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.canonical().items()
              if k not in DERIVED_KEYS}
    if config.corpora:  # the registrations (with their folders), not the run-id form (fingerprints)
        params["corpora"] = config.corpora
    params["output_dir"] = str(directory)
    params["device"] = execution.device
    params["threads"] = execution.threads or 0
    papermill.execute_notebook(
        str(source), str(directory / "notebook.ipynb"), parameters=params, kernel_name="python3",
        # the kernel starts in the run's folder (nbclient's resources path), but the driver does
        # not chdir there: papermill's cwd= changes the working directory of the whole process,
        # which runs side by side (run_grid jobs) would see (it sent a run's folder into another's)
        progress_bar=False, cwd=None, resources={"metadata": {"path": str(directory)}},
        execution_timeout=execution.cell_timeout,
        # the run's own progress bars (stderr) reach the terminal
        stderr_file=sys.stderr if execution.stream else None,
    )
    source.unlink()


def execute_run(config: RunConfig, out: Path | str, execution: Execution = Execution()) -> RunOutcome:
    """Execute one run into ``OUT/runs/<run_id>/`` atomically (see the module docstring): the
    one code path of the serial runner and of every Ray task.

    A run finished already is skipped. Otherwise the notebook runs in a fresh attempt folder
    whose ``attempt.json`` names the host and process; when it ends, finished or failed (then
    with ``error.json``), the folder replaces whatever unfinished folder ``runs/<run_id>`` held.
    A finished run is never replaced: if another attempt finished first, this one is dropped.
    """
    out = Path(out).resolve()  # never relative: nothing may depend on the working directory
    if is_done(out, config):
        return RunOutcome(config.run_id, "skipped")
    attempt = {"run_id": config.run_id, "host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
    staging = out / ATTEMPTS / f"{config.run_id}.{uuid.uuid4().hex[:8]}"
    write_json(staging / "attempt.json", attempt)
    start = time.perf_counter()
    error = None
    try:
        execute(config, staging, execution=execution)
        if not (staging / "done.json").is_file():
            raise RuntimeError("the notebook finished without writing done.json")
        written = json.loads((staging / "params.json").read_text()).get("run_id")
        if written != config.run_id:  # the notebook dropped or changed a parameter
            (staging / "done.json").unlink()
            raise RuntimeError(f"the notebook ran {written}, not {config.run_id}: "
                               f"a parameter did not reach its RunConfig")
    except Exception as err:  # noqa: BLE001 - recorded in the run's folder; the grid goes on
        error = f"{type(err).__name__}: {err}"
        write_json(staging / "error.json", {
            "run_id": config.run_id, "error": error, "traceback": traceback.format_exc(),
            "params": config.canonical(), "attempt": attempt,
        })
    seconds = time.perf_counter() - start
    if not publish(staging, run_dir(out, config)):
        return RunOutcome(config.run_id, "skipped", None, seconds, attempt)
    return RunOutcome(config.run_id, "failed" if error else "ran", error, seconds, attempt)


def publish(staging: Path, final: Path) -> bool:
    """Move an attempt's folder to ``final`` (``runs/<run_id>``) unless a finished run is there.

    Returns whether it moved. An unfinished ``final`` (a failed attempt's ``error.json``, or a
    partial folder written before attempts had folders of their own) is replaced.
    """
    if (final / "done.json").is_file():  # another attempt finished first: keep its files
        shutil.rmtree(staging, ignore_errors=True)
        return False
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        old = staging.with_name(staging.name + ".replaced")
        os.replace(final, old)
        shutil.rmtree(old, ignore_errors=True)
    try:
        os.rename(staging, final)
    except OSError:  # another attempt published between the check and the rename
        if (final / "done.json").is_file():
            shutil.rmtree(staging, ignore_errors=True)
            return False
        raise
    return True


def record_failure(out: Path | str, config: RunConfig, error: str) -> None:
    """Publish an ``error.json`` for a run whose attempts all died without writing one (a Ray
    task whose retries ran out), unless the run finished after all."""
    staging = Path(out) / ATTEMPTS / f"{config.run_id}.{uuid.uuid4().hex[:8]}"
    write_json(staging / "error.json", {"run_id": config.run_id, "error": error, "traceback": "",
                                        "params": config.canonical()})
    publish(staging, run_dir(Path(out), config))


def clear_attempts(out: Path | str) -> None:
    """Remove what killed attempts left under ``OUT/.attempts`` (only while no attempt of this
    grid runs: at the start and the end of a grid)."""
    shutil.rmtree(Path(out) / ATTEMPTS, ignore_errors=True)


#: the grid-level tables collect() writes: file name -> (file in each run, its columns)
TABLES = {
    "results.parquet": ("rows.parquet", RESULT_COLUMNS),
    "predictions.parquet": ("predictions.parquet", PREDICTION_COLUMNS),
    "embedding_rows.parquet": ("embedding_rows.csv", ["run_id", *ROW_COLUMNS]),
}


def finished_runs(out: Path) -> tuple[list[Path], list[Path]]:
    """Folders of finished runs under ``out``: (current engine and method versions, older ones).

    Runs of an older engine stay on disk (their parameters hash to other ids) but are never
    mixed into the tables: the engine changed what they would now give.
    """
    current, stale = [], []
    for done in sorted(Path(out).glob("runs/*/done.json")):
        try:
            params = json.loads((done.parent / "params.json").read_text())
        except FileNotFoundError:  # moved or removed since the listing (by hand, or a replaced attempt)
            continue
        current_keys = versions(params.get("method"), bool(params.get("dynamic")))
        valid = all(params.get(key) == current_keys.get(key) for key in VERSION_KEYS)
        (current if valid else stale).append(done.parent)
    return current, stale


def collect(out: Path) -> pd.DataFrame:
    """The results table (and the grid's predictions and embedding rows), rebuilt from the run folders."""
    runs, stale = finished_runs(out)
    if stale:
        tqdm.write(f"{len(stale)} finished run(s) of an older engine version under {out}/runs left out "
                   f"of the tables (engine version is now {ENGINE_VERSION}, methods {METHOD_VERSIONS}, "
                   f"Dynamic Sparsification {DYNAMIC_VERSION})", file=sys.stderr)
    tables = {}
    for name, (member, columns) in TABLES.items():
        frames = [_read(run / member) for run in runs if (run / member).is_file()]
        table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
        if name == "results.parquet" and len(table):
            for column, value in LATER_COLUMNS.items():  # rows of runs written before the column
                missing = table[column].isna() if column in table else table["run_id"].notna()
                if missing.any():
                    tqdm.write(f"{table.loc[missing, 'run_id'].nunique()} run(s) written before the '{column}' "
                               f"column: marked {value}", file=sys.stderr)
                    table = fill_missing(table, column).reindex(columns=columns)
        write_parquet(Path(out) / name, table)
        tables[name] = table
    return tables["results.parquet"]


def _read(path: Path) -> pd.DataFrame:
    """A run's table. A CSV's run ids and language codes are read as text, whatever they look
    like: the id ``865e81728626`` would otherwise be the float ``inf``, and a code "NA" missing;
    only empty fields are missing values."""
    if path.suffix != ".csv":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"run_id": str, "language": str}, keep_default_na=False, na_values=[""])


def run_grid(configs: list[RunConfig], out: Path | str, progress: bool = True, stream: bool = True,
             execution: Execution | None = None, jobs: int = 1) -> GridSummary:
    """Run every config not yet finished under ``out``, ``jobs`` at a time, in kernel children of
    this process; see the module docstring. ``execution`` defaults to ``Execution(stream=stream)``.

    With ``jobs`` above 1 each run gets ``cores // jobs`` torch threads unless ``execution.threads``
    says otherwise: on a small machine one single-thread run per core does more than one run
    using every core (1.4-1.75x the throughput on 2 cores: README, "Running on a Ray cluster"). Runs are
    independent processes (papermill kernels), so a thread per job only waits on its kernel; the
    tables are rebuilt under a lock, one finished run at a time.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    out = Path(out).resolve()
    execution = execution or Execution(stream=stream)
    if jobs > 1 and execution.threads is None:
        execution = replace(execution, threads=max(1, (os.cpu_count() or 1) // jobs))
    (out / "runs").mkdir(parents=True, exist_ok=True)
    clear_attempts(out)
    start = time.perf_counter()
    pending = [c for c in configs if not is_done(out, c)]
    ran, skipped, failed = 0, len(configs) - len(pending), []
    bar = tqdm(total=len(configs), initial=skipped, desc="grid", unit="run", disable=not progress)
    lock = threading.Lock()

    def one(config: RunConfig) -> None:
        nonlocal ran, skipped
        outcome = execute_run(config, out, execution)
        with lock:
            if outcome.status == "ran":
                ran += 1
            elif outcome.status == "skipped":
                skipped += 1
            else:
                failed.append(config.run_id)
                tqdm.write(f"run {config.run_id} failed: {str(outcome.error)[:300]}", file=sys.stderr)
            collect(out)
            bar.set_postfix_str(f"last: {config.setting[:5]} {','.join(config.languages)[:20]} "
                                f"{config.method} {config.scope} {config.sparsity} seed {config.seed}")
            bar.update(1)

    if jobs == 1:
        for config in pending:
            one(config)
    else:
        pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="run")
        futures = [pool.submit(one, config) for config in pending]
        try:
            for future in futures:
                future.result()
        finally:
            # on Ctrl-C start nothing more; a terminal's Ctrl-C reaches the kernels under way too,
            # which then end as failed attempts (tried again on the next invocation)
            pool.shutdown(wait=False, cancel_futures=True)
    bar.close()
    clear_attempts(out)
    results = out / "results.parquet"
    collect(out)
    return GridSummary(ran, skipped, failed, time.perf_counter() - start, results)
