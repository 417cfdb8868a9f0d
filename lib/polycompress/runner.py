"""Run a grid: one papermill execution of the experiment notebook per run, resumable.

``OUT/runs/<run_id>/`` holds each run's files and its executed notebook; ``OUT/results.parquet``
(with ``OUT/predictions.parquet`` and ``OUT/embedding_rows.parquet``) is rebuilt (atomically) from
every finished run of the current engine version after each run, so a grid killed at any point
and started again finishes with no lost and no duplicated rows. A failing run writes
``error.json`` and the grid goes on; it is tried again on the next invocation.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from .artifacts import write_json, write_parquet
from .config import ENGINE_VERSION, METHOD_VERSIONS, RunConfig, fill_subnetworks
from .experiment import PREDICTION_COLUMNS, RESULT_COLUMNS
from .pruning.rows import ROW_COLUMNS

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
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.canonical().items()
              if k not in ("engine_version", "method_version")}
    params["output_dir"] = str(directory)
    papermill.execute_notebook(
        str(source), str(directory / "notebook.ipynb"), parameters=params, kernel_name="python3",
        progress_bar=False, cwd=str(directory),
        # the run's own progress bars (stderr) reach the terminal
        stderr_file=sys.stderr if stream else None,
    )
    source.unlink()


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
        params = json.loads((done.parent / "params.json").read_text())
        valid = (params.get("engine_version") == ENGINE_VERSION
                 and params.get("method_version") == METHOD_VERSIONS.get(params.get("method")))
        (current if valid else stale).append(done.parent)
    return current, stale


def collect(out: Path) -> pd.DataFrame:
    """The results table (and the grid's predictions and embedding rows), rebuilt from the run folders."""
    runs, stale = finished_runs(out)
    if stale:
        tqdm.write(f"{len(stale)} finished run(s) of an older engine version under {out}/runs left out "
                   f"of the tables (engine version is now {ENGINE_VERSION}, methods {METHOD_VERSIONS})", file=sys.stderr)
    tables = {}
    for name, (member, columns) in TABLES.items():
        frames = [_read(run / member) for run in runs if (run / member).is_file()]
        table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
        if name == "results.parquet" and len(table):
            missing = table["subnetworks"].isna() if "subnetworks" in table else table["run_id"].notna()
            if missing.any():
                tqdm.write(f"{table.loc[missing, 'run_id'].nunique()} run(s) written before the 'subnetworks' "
                           f"column: marked shared", file=sys.stderr)
                table = fill_subnetworks(table).reindex(columns=columns)
        write_parquet(Path(out) / name, table)
        tables[name] = table
    return tables["results.parquet"]


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


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
            written = json.loads((directory / "params.json").read_text()).get("run_id")
            if written != config.run_id:  # the notebook dropped or changed a parameter
                (directory / "done.json").unlink()
                raise RuntimeError(f"the notebook ran {written}, not {config.run_id}: "
                                   f"a parameter did not reach its RunConfig")
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
