"""Is a pruned model faster or smaller? The shapes a grid's runs produced, timed on this CPU.

    POLYCOMPRESS_DATA=../shared/data .venv/bin/python benchmarks/prune_speed.py \\
        --grid results/default --json results/default/speed.json

Models: the dense model and one model per pruned shape the grid's finished runs produced:

- IMP (each scope and sparsity of the grid): magnitude masks over the scope at the run's target,
  kept dense in memory, as IMP leaves them (zeros, not a smaller model);
- post-training quantizations the runs scored (``quantizations``): the dense model quantized
  (:mod:`polycompress.compress.quantization`); its speed is the method's, not the run's weights'
  (an int8 kernel's time does not depend on the values; LLM.int8's outlier columns do, a little);
- distilled students (``distill`` runs): the student's shape (layers x heads) cut from the dense
  model (:func:`polycompress.compress.distillation.make_student`);
- structured runs with one shared structure (``grad``, ``l0``): the run's kept heads and FFN units
  per layer (its ``structure.json``) physically removed (:mod:`polycompress.compress.pruning.compact`);
  one run per method and sparsity, the multilingual one where the grid has it;
- a Dynamic Sparsification run (``dynamic``) per method: each of its levels' kept heads and FFN
  units removed, one run (the multilingual one where the grid has it): size and speed along the
  whole curve of one training (Li et al. 2022, Fig. 4).

A run keeps its scores, not its weights, so each model is rebuilt on the run's own base model
(its trimmed vocabulary, ``done.json``) with the run's shape. On a CPU a dense kernel's time
does not depend on the values it multiplies, zeros included, so these models have the runs'
speed and file size but not their accuracy; the gzip size follows the zeros, which are the runs'
share. A structured run stores how many FFN units each layer kept, not which: the first ones are
kept, which gives the same shapes.

Timing, with the threads torch uses here: ``--repeats`` rounds (at least 5), interleaved: each
round times every model once, in an order rotated from round to round, so a slower moment of the
machine falls on all models alike. Per round and model: latency at batch 1 (median over
``N_LATENCY`` sentences of one pass each, after a warm-up pass) and throughput at batch 32
(sentences/s over the test sample, length-sorted batches). Reported: the median over rounds with
the lowest and highest round, and the speed-up against dense computed within each round.
Test sentences: an equal share of every grid language's test split. The removed structured
models' predictions are compared with their masked twins' on every test sentence.

The output records the models it measured; run again on an unchanged grid, it says so and
exits (``--force`` measures again).
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from polycompress.training import Encoded

REPEATS, N_TEST, N_LATENCY = 5, 256, 48


def grid_models(grid: Path) -> tuple[str, list[dict]]:
    """(the runs' base model folder, one spec per model to time) from a grid folder's finished runs."""
    from polycompress.runner import finished_runs

    runs, _ = finished_runs(grid)
    if not runs:
        raise SystemExit(f"{grid}: no finished runs; run the grid first (polycompress run ... --out {grid})")
    records = []
    for run in runs:
        params = json.loads((run / "params.json").read_text())
        done = json.loads((run / "done.json").read_text())
        records.append({**params, "folder": done["model_folder"], "dir": run})
    table = pd.DataFrame(records)
    folders = set(table["folder"])
    if len(folders) != 1:
        raise SystemExit(f"{grid}: runs use {len(folders)} base models ({sorted(folders)}); one grid, one model")
    folder = folders.pop()
    if not Path(folder).is_dir():
        raise SystemExit(f"{grid}: the runs' base model {folder} is not on this machine (polycompress run re-creates it)")
    specs = [{"model": "dense", "method": "dense", "scope": "none", "sparsity": 0.0, "runs": []}]
    # the comparison runs over the trimmed rows (preset default-trimmed) have the same shapes
    pool = table["embedding_pool"] if "embedding_pool" in table else pd.Series("full", index=table.index)
    imp = table[(table["method"] == "imp") & (pool.fillna("full") != "trimmed")]
    for (scope, sparsity), part in imp.groupby(["scope", "sparsity"]):
        specs.append({"model": f"imp {scope} (masked)", "method": "imp", "scope": scope, "sparsity": float(sparsity),
                      "runs": sorted(part["run_id"])})
    # post-training quantizations the grid's runs scored: the dense model quantized each way
    asked = table["quantizations"].dropna() if "quantizations" in table else pd.Series([], dtype=object)
    for method in sorted({q for qs in asked for q in qs}):
        specs.append({"model": f"dense, {method}", "method": "dense", "scope": "none", "sparsity": 0.0,
                      "runs": [], "quantization": method})
    # distilled students the grid trained: their shapes (layers x heads), dense
    distill = table["distill"].fillna("none") if "distill" in table else pd.Series("none", index=table.index)
    students = table[distill != "none"]  # (a grid without students has no student_* columns)
    for (layers, heads), part in (students.groupby(["student_layers", "student_heads"]) if len(students) else []):
        specs.append({"model": f"student {int(layers)} layers x {int(heads)} heads", "method": "distill", "scope": "none",
                      "sparsity": 0.0, "runs": sorted(part["run_id"]), "student": [int(layers), int(heads)]})
    dynamic = table["dynamic"].map(lambda d: isinstance(d, list) and len(d) > 0) if "dynamic" in table \
        else pd.Series(False, index=table.index)
    shared = table[table["method"].isin(["grad", "l0"]) & (table.get("subnetworks", "shared") != "non_shared") & ~dynamic]
    # Dynamic Sparsification: every level of one run per method and scope (the multilingual one
    # if any; Li et al. Fig. 4)
    for (method, scope), part in (table[dynamic].groupby(["method", "scope"]) if dynamic.any() else []):
        multi = part[part["setting"] == "multilingual"]
        run = (multi if len(multi) else part).sort_values("run_id").iloc[0]
        for level in sorted(run["dynamic"]):
            specs.append({"model": f"{method} DS level (removed)" + (" incl. embedding rank" if scope == "incl_embeddings" else ""),
                          "method": method, "scope": scope, "sparsity": float(level), "runs": [run["run_id"]],
                          "structure": str(run["dir"] / "structure.json"), "level": float(level)})
    for (method, scope, sparsity), part in shared.groupby(["method", "scope", "sparsity"]):
        multi = part[part["setting"] == "multilingual"]
        run = (multi if len(multi) else part).sort_values("run_id").iloc[0]
        specs.append({"model": f"{method} (removed)" + (" incl. embedding rank" if scope == "incl_embeddings" else ""),
                      "method": method, "scope": scope, "sparsity": float(sparsity),
                      "runs": [run["run_id"]], "structure": str(run["dir"] / "structure.json")})
    return folder, specs


def test_sentences(codes: list[str], tokenizer) -> Encoded:
    """An equal share of N_TEST sentences from each language's test split, encoded, interleaved."""
    from polycompress.corpora import load_language, subsample
    from polycompress.training import encode

    per = max(1, N_TEST // len(codes))
    parts = []
    for code in codes:
        ds, _ = load_language(code)
        test = subsample(ds["test"], min(per, len(ds["test"])), 0)
        parts.append(list(zip(test["tokens"], test["ner_tags"])))
    # round-robin, so the latency sentences come from every language
    mixed = [part[i] for i in range(max(map(len, parts))) for part in parts if i < len(part)]
    return encode(tokenizer, [t for t, _ in mixed], [g for _, g in mixed], 512)


def head(data: Encoded, n: int) -> Encoded:
    """The first ``n`` sentences of ``data``."""
    return Encoded(data.input_ids[:n], data.labels[:n], data.first[:n], 0)


def build(spec: dict, base, test, pad_id: int) -> tuple[torch.nn.Module, dict | None]:
    """The model of ``spec`` on ``base`` (left unchanged), and for a removed structure the check
    that it predicts what its masked twin predicts."""
    from polycompress.compress.pruning import derived_schedule
    from polycompress.compress.pruning.compact import compact
    from polycompress.compress.pruning.magnitude import MagnitudePruner
    from polycompress.compress.pruning.structured import Structure, pruned_share, structure_masks
    from polycompress.training import predict

    if spec.get("quantization"):
        from polycompress.compress.quantization import quantize

        # an unavailable method stops the benchmark with the library's reason: no row without a time
        return quantize(base, spec["quantization"]), None
    if spec.get("student"):
        from polycompress.compress.distillation import make_student

        return make_student(base, *spec["student"]).eval(), None
    model = copy.deepcopy(base)
    if spec["method"] == "dense":
        return model, None
    if spec["method"] == "imp":
        pruner = MagnitudePruner(model, derived_schedule(10, spec["sparsity"]), spec["scope"])
        pruner.update_masks(spec["sparsity"])
        pruner.apply()
        return model, None
    saved = json.loads(Path(spec["structure"]).read_text())
    if "level" in spec:  # one level of a Dynamic Sparsification run
        kept = saved["levels"][str(spec["level"])]
    else:
        kept = saved["languages"]["all"] if "languages" in saved else saved
    heads = torch.tensor(kept["heads"], dtype=torch.bool)
    units = torch.zeros(len(kept["units_kept"]), saved["units"], dtype=torch.bool)
    for layer, n in enumerate(kept["units_kept"]):
        units[layer, :n] = True
    ranks = None
    if "ranks" in kept:  # the word embeddings' rank pruned too: the model factorised as the run's was
        from polycompress.compress.pruning.embedding_rank import factorise

        factorise(model)
        ranks = torch.tensor(kept["ranks"], dtype=torch.bool)
    structure = Structure(heads, units, ranks)
    with torch.no_grad():
        for p, m in structure_masks(model, structure).values():
            p.mul_(m)
    small = compact(model, structure).eval()
    a, b = predict(model, test, 32, pad_id), predict(small, test, 32, pad_id)
    check = {"model": spec["model"], "sparsity": spec["sparsity"], "achieved": pruned_share(model, structure),
             "sentences": len(a), "identical_predictions": sum(x == y for x, y in zip(a, b))}
    return small, check


@torch.inference_mode()
def latency(model, data, pad_id: int) -> float:
    """Seconds per sentence at batch 1: median over the first N_LATENCY sentences, one pass each."""
    from polycompress.training import collate

    times = []
    for i in range(min(N_LATENCY, len(data))):
        batch = collate(data, [i], pad_id)
        batch.pop("labels")
        t = time.perf_counter()
        model(**batch)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def throughput(model, data, pad_id: int) -> float:
    """Sentences per second at batch 32 over the whole test sample."""
    from polycompress.training import predict

    t = time.perf_counter()
    predict(model, data, 32, pad_id)
    return len(data) / (time.perf_counter() - t)


def sizes(model) -> tuple[int, int, int]:
    """(parameters, bytes of the saved weights, bytes gzip-compressed): model.safetensors, or for
    a dynamic-quantized model (whose packed int8 weights safetensors cannot hold) the bytes of
    ``torch.save(state_dict)`` (:func:`polycompress.compress.quantization.saved_bytes`)."""
    import io

    try:
        with tempfile.TemporaryDirectory() as d:
            model.save_pretrained(d)
            raw = (Path(d) / "model.safetensors").read_bytes()
    except Exception:  # torch.ao's packed parameters
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        raw = buffer.getvalue()
    return sum(p.numel() for p in model.parameters()), len(raw), len(gzip.compress(raw, compresslevel=6))


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure(models: list[tuple[dict, torch.nn.Module]], test, pad_id: int, repeats: int) -> list[dict]:
    """Interleaved rounds (see the module docstring); one row per model."""
    from tqdm import tqdm

    for _, model in models:  # warm-up: every shape once, outside the rounds
        latency(model, head(test, 4), pad_id)
        throughput(model, head(test, 32), pad_id)
    lat = {i: [] for i in range(len(models))}
    thr = {i: [] for i in range(len(models))}
    for r in tqdm(range(repeats), desc="rounds", unit="round"):
        order = [(r + k) % len(models) for k in range(len(models))]
        for i in order:
            lat[i].append(latency(models[i][1], test, pad_id))
            thr[i].append(throughput(models[i][1], test, pad_id))
    rows = []
    for i, (spec, model) in enumerate(models):
        params, size, gz = sizes(model)
        rows.append({
            "model": spec["model"], "method": spec["method"], "scope": spec["scope"], "sparsity": spec["sparsity"],
            "quantization": spec.get("quantization", "none"),
            "runs": spec["runs"], "parameters": params, "safetensors_MB": size / 1e6, "gzip_MB": gz / 1e6,
            "latency_ms_batch1": {k: 1e3 * v for k, v in spread(lat[i]).items()},
            "sentences_per_s_batch32": spread(thr[i]),
            # within a round: dense and this model timed minutes apart at most
            "speedup_batch1": spread([a / b for a, b in zip(lat[0], lat[i])]),
            "speedup_batch32": spread([b / a for a, b in zip(thr[0], thr[i])]),
        })
    return rows


def main() -> None:
    from transformers import AutoModelForTokenClassification, AutoTokenizer, set_seed
    from transformers.utils import logging

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid", type=Path, required=True, help="a grid's output folder (polycompress run --out)")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="interleaved rounds (at least 5)")
    parser.add_argument("--force", action="store_true", help="measure even if --json already covers these models")
    args = parser.parse_args()
    if args.repeats < 5:
        parser.error("--repeats: at least 5 rounds, so a median and its spread mean something")
    folder, specs = grid_models(args.grid)
    key = [{k: s[k] for k in ("model", "sparsity", "runs")} for s in specs]
    if args.json and args.json.is_file() and not args.force:
        old = json.loads(args.json.read_text())
        if old.get("models") == key and old.get("repeats") == args.repeats:
            print(f"{args.json}: already measures these {len(specs)} models; --force to measure again")
            return
    logging.set_verbosity_error()  # the new head's "newly initialized" notice
    set_seed(0)
    results = pd.read_parquet(args.grid / "results.parquet")
    codes = sorted(results["language"].unique())
    tok = AutoTokenizer.from_pretrained(folder)
    from polycompress.corpora import load_language

    names = load_language(codes[0])[0]["train"].features["ner_tags"].feature.names
    base = AutoModelForTokenClassification.from_pretrained(folder, num_labels=len(names)).eval()
    test = test_sentences(codes, tok)
    models, checks = [], []
    for spec in specs:
        model, check = build(spec, base, test, tok.pad_token_id)
        models.append((spec, model.eval()))
        if check:
            checks.append(check)
            print(json.dumps(check), flush=True)
    rows = measure(models, test, tok.pad_token_id, args.repeats)
    for row in rows:
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items() if k != "runs"}),
              flush=True)
    out = {"threads": torch.get_num_threads(), "repeats": args.repeats, "languages": codes,
           "test_sentences": len(test), "latency_sentences": min(N_LATENCY, len(test)), "base_model": folder,
           "models": key, "rows": rows, "structured_checks": checks}
    if args.json:
        tmp = args.json.with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=2))
        tmp.replace(args.json)  # never a half-written file


if __name__ == "__main__":
    main()
