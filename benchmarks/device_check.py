"""Does a run work on a GPU, and how fast does it train there? The smoke preset on ``--devices``
(default ``cuda,cpu``), each smoke run twice on the first device to see whether it repeats, then
the default preset's seed-0 multilingual runs (dense and IMP with embeddings, bf16). ``--precision``
runs them all in another arithmetic (``fp16``: the CUDA path with a gradient scaler).

    POLYCOMPRESS_DATA=../shared/data .venv/bin/python benchmarks/device_check.py --json out.json

Runs go through :func:`polycompress.experiment.run` in this process (not papermill: the check is
about the device, and a GPU box may have no Jupyter kernel), into a scratch folder; nothing is
added to a results table. Each row: wall and training seconds, real (non-padding) training
tokens per second, the last logged losses and regular-test F1 per language. Tokens/s of the
smoke runs are launch-bound (5-10 steps of 8 short sentences); the default runs (500 steps of 32)
are the throughput to compare with a CPU's ``done.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import tempfile
import time
from pathlib import Path

import torch

from polycompress import experiment
from polycompress.config import RunConfig
from polycompress.grid import load_grid


def measure(tag: str, config: RunConfig, device: str, scratch: Path) -> dict:
    """Run ``config`` on ``device`` and return its row (see the module docstring)."""
    folder = scratch / tag / device / config.run_id
    start = time.perf_counter()
    out = experiment.run(config, folder, progress=False, device=device)
    done = json.loads((folder / "done.json").read_text())
    regular = out.rows[(out.rows.test_set == "regular") & (out.rows.quantization == "none")]
    return {
        "tag": tag, "device": device, "run_id": config.run_id, "setting": config.setting,
        "method": config.method, "scope": config.scope, "subnetworks": config.subnetworks, "dynamic": list(config.dynamic),
        "sparsity": config.sparsity, "precision": config.precision,
        "wall_s": round(time.perf_counter() - start, 1), "train_seconds": done["train_seconds"],
        "train_tokens": done["train_tokens"], "steps": done["steps"],
        "tokens_per_s": round(done["train_tokens"] / max(done["train_seconds"], 1e-9), 1),
        "last_losses": [round(float(x), 6) for x in out.curve["loss"].tail(3)],
        "finite_losses": bool(out.curve["loss"].map(math.isfinite).all()),
        "f1_regular": {r.language: round(float(r.f1), 4) for r in regular.itertuples()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", default="cuda,cpu", help="comma-separated, the first is checked for repeats")
    parser.add_argument("--default-runs", type=int, default=2, help="default-preset runs on the first device")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"],
                        help="run every run in this arithmetic instead of its own (fp16: CUDA only, loss-scaled)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    devices = args.devices.split(",")
    print("torch", torch.__version__, "| cuda", torch.cuda.get_device_name() if torch.cuda.is_available() else "none",
          "| threads", torch.get_num_threads(), flush=True)
    smoke = load_grid("smoke").runs()
    default = [c for c in load_grid("default").runs() if c.setting == "multilingual" and c.seed == 0
               and (c.method == "dense" or c.scope == "incl_embeddings")][: args.default_runs]
    if args.precision:
        smoke, default = ([dataclasses.replace(c, precision=args.precision) for c in runs] for runs in (smoke, default))
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        plan = [("smoke", c, d) for d in devices for c in smoke]
        plan[len(smoke):len(smoke)] = [("repeat", c, devices[0]) for c in smoke[:2]] + [("default", c, devices[0]) for c in default]
        for tag, config, device in plan:
            rows.append(measure(tag, config, device, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(rows, indent=1))
    for r in rows:
        print(f"{r['tag']:8} {r['device']:5} {r['setting'][:5]} {r['method']:5} {r['scope'][:4]} "
              f"wall {r['wall_s']:6.1f} s  train {r['train_seconds']:6.1f} s  {r['tokens_per_s']:9.1f} tok/s  last loss {r['last_losses'][-1]}")


if __name__ == "__main__":
    main()
