"""Where the whole book's time went: the run records of a finished build, summed per grid.

    .venv/bin/python benchmarks/book_time.py [--results results] [--cores 2] [--json out.json]

For each grid the book reads (``BOOK``: preset and the folder under ``--results`` that the
Makefile's targets run it into), every run of the preset is looked up in its folder and its
records are summed, in CPU-minutes (each run computes on one thread, two side by side):

- ``train``: ``done.json``'s ``train_seconds``, the optimizer steps with everything a step does
  (pruning masks, importance passes, L0 gates, a distillation's teacher);
- ``run``: ``done.json``'s ``seconds``, the run from its start inside the notebook to its last
  row (loading the corpora and the model, training, evaluation of every test set and level);
- ``notebook``: from the attempt's start (``attempt.json``, written before papermill starts the
  kernel) to ``done.json``'s last write, which adds the kernel's start and imports;
- ``span``: wall-clock minutes from the grid's first attempt to its last ``done.json``, which
  means something only for a grid run in one go (a grid resumed over days spans the days).

The last lines divide training and notebook time by ``--cores``: with one single-thread run per
core and nothing idle, no build of these runs on this machine can take less than the first
figure, whatever its evaluation, loading or scheduling costs; the second is the same bound for
the runs as they are, before the speed benchmarks and the book's own build.

A run of a preset that has no ``done.json`` in the folder is counted as missing (its time
unknown), never estimated. Runs shared by two grids (li-ds's dense runs are the default's) count
once, with the first grid that lists them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from polycompress.grid import load_grid
from polycompress.runner import run_dir

#: the book's grids and the folder (under --results) each is run into: the Makefile's targets
#: ``grid`` (default), ``curve``, ``awobade``, ``ds`` (li-ds, into the default's folder) and ``transfer``
BOOK = [("default", "default"), ("learning-curve", "learning-curve"), ("awobade-default", "awobade-default"),
        ("li-ds", "default"), ("awobade-transfer", "awobade-transfer")]


def grid_time(preset: str, folder: Path, counted: set[str]) -> dict:
    """Sums of one preset's finished runs in ``folder`` (seconds), skipping ids in ``counted``
    (and adding the ones it counts)."""
    out = {"preset": preset, "folder": str(folder), "runs": 0, "missing": 0, "shared": 0,
           "train": 0.0, "run": 0.0, "notebook": 0.0, "first_start": None, "last_done": None}
    for config in load_grid(preset).runs():
        if config.run_id in counted:
            out["shared"] += 1
            continue
        path = run_dir(folder, config)
        done_path = path / "done.json"
        if not done_path.is_file():
            out["missing"] += 1
            continue
        counted.add(config.run_id)
        done = json.loads(done_path.read_text(encoding="utf-8"))
        started = json.loads((path / "attempt.json").read_text(encoding="utf-8"))["started"]
        finished = done_path.stat().st_mtime
        out["runs"] += 1
        out["train"] += done["train_seconds"]
        out["run"] += done["seconds"]
        out["notebook"] += finished - started
        out["first_start"] = started if out["first_start"] is None else min(out["first_start"], started)
        out["last_done"] = finished if out["last_done"] is None else max(out["last_done"], finished)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=Path("results"), help="the folder holding the grids' folders")
    parser.add_argument("--cores", type=int, default=2, help="cores the runs shared (one run per core)")
    parser.add_argument("--json", type=Path, help="also write the sums here")
    args = parser.parse_args()
    if args.cores < 1:
        parser.error(f"--cores must be at least 1, got {args.cores}")

    counted: set[str] = set()
    grids = [grid_time(preset, args.results / folder, counted) for preset, folder in BOOK]
    print(f"{'grid':18s} {'runs':>5s} {'missing':>7s} {'train':>7s} {'run':>7s} {'notebook':>8s} {'span':>6s}   (CPU-minutes; span: wall)")
    for g in grids:
        span = (g["last_done"] - g["first_start"]) / 60 if g["runs"] else float("nan")
        print(f"{g['preset']:18s} {g['runs']:5d} {g['missing']:7d} {g['train'] / 60:7.1f} {g['run'] / 60:7.1f} "
              f"{g['notebook'] / 60:8.1f} {span:6.1f}" + (f"   ({g['shared']} runs counted above)" if g["shared"] else ""))
    train, run, notebook = (sum(g[k] for g in grids) / 60 for k in ("train", "run", "notebook"))
    print(f"{'all':18s} {sum(g['runs'] for g in grids):5d} {sum(g['missing'] for g in grids):7d} "
          f"{train:7.1f} {run:7.1f} {notebook:8.1f}")
    print(f"training alone on {args.cores} cores: at least {train / args.cores:.1f} min of wall time; "
          f"the runs as they are: at least {notebook / args.cores:.1f} min "
          f"(evaluation, loading and notebooks {notebook - train:.1f} CPU-min), before the speed benchmarks and the book's build")
    if any(g["missing"] for g in grids):
        print("runs missing from the folders are not counted: these are lower bounds of a part of the book")
    if args.json:
        args.json.write_text(json.dumps({"cores": args.cores, "grids": grids}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
