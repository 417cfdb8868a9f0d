"""Run a grid: one papermill execution of the experiment notebook per run, resumable.

``OUT/runs/<run_id>/`` holds each run's files and its executed notebook; ``OUT/results.parquet``
is rebuilt (atomically) from every finished run after each run, so a grid killed at any point
and started again finishes with no lost and no duplicated rows. A failing run writes
``error.json`` and the grid goes on; it is tried again on the next invocation.
"""

from __future__ import annotations

import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from .artifacts import write_json, write_parquet
from .config import RunConfig
from .experiment import RESULT_COLUMNS

NOTEBOOK = Path(__file__).resolve().parents[2] / "book" / "experiments" / "finetune_prune.md"


@dataclass
class GridSummary:
    ran: int
    skipped: int
    failed: list[str]
    seconds: float
    results: Path


def run_dir(out: Path, config: RunConfig) -> Path:
    return Path(out) / "runs" / config.run_id


def is_done(out: Path, config: RunConfig) -> bool:
    return (run_dir(out, config) / "done.json").is_file()


def execute(config: RunConfig, directory: Path, notebook: Path = NOTEBOOK, stream: bool = True) -> None:
    """Execute the experiment notebook for ``config``; the executed copy lands in ``directory``."""
    import jupytext
    import papermill

    directory = directory.resolve()  # the kernel runs inside the folder: paths must not be relative
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "input.ipynb"
    jupytext.write(jupytext.read(notebook), source)
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.canonical().items() if k != "engine_version"}
    params["output_dir"] = str(directory)
    papermill.execute_notebook(
        str(source), str(directory / "notebook.ipynb"), parameters=params, kernel_name="python3",
        progress_bar=False, cwd=str(directory),
        # the run's own progress bars (stderr) reach the terminal
        stderr_file=sys.stderr if stream else None,
    )
    source.unlink()


def collect(out: Path) -> pd.DataFrame:
    """The results table: the rows of every finished run, rebuilt from the run folders."""
    frames = [pd.read_parquet(p.parent / "rows.parquet")
              for p in sorted(Path(out).glob("runs/*/done.json"))]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RESULT_COLUMNS)
    write_parquet(Path(out) / "results.parquet", table)
    return table


def run_grid(configs: list[RunConfig], out: Path | str, progress: bool = True, stream: bool = True) -> GridSummary:
    """Run every config not yet finished under ``out``; see the module docstring."""
    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    ran, skipped, failed = 0, 0, []
    bar = tqdm(configs, desc="grid", unit="run", disable=not progress)
    for config in bar:
        bar.set_postfix_str(f"{config.setting[:5]} {','.join(config.languages)[:20]} {config.method} {config.scope} {config.sparsity}")
        directory = run_dir(out, config)
        if is_done(out, config):
            skipped += 1
            continue
        if directory.exists():  # an interrupted or failed attempt: start it clean
            shutil.rmtree(directory)
        try:
            execute(config, directory, stream=stream)
            if not (directory / "done.json").is_file():
                raise RuntimeError("the notebook finished without writing done.json")
            ran += 1
        except Exception as err:  # noqa: BLE001 - record, go on with the grid
            failed.append(config.run_id)
            write_json(directory / "error.json", {
                "run_id": config.run_id, "error": f"{type(err).__name__}: {err}",
                "traceback": traceback.format_exc(), "params": config.canonical(),
            })
            tqdm.write(f"run {config.run_id} failed: {type(err).__name__}: {str(err)[:300]}", file=sys.stderr)
        collect(out)
    results = out / "results.parquet"
    collect(out)
    return GridSummary(ran, skipped, failed, time.perf_counter() - start, results)
