"""One run: fine-tune while pruning, evaluate every language, write the run's folder.

    from polycompress.config import RunConfig
    from polycompress import experiment
    experiment.run(RunConfig(languages=("sw",), setting="monolingual"), "results/scratch")

The run's folder holds ``params.json`` (canonical parameters), ``sparsity.csv``, ``curve.csv``,
``rows.parquet`` (its rows of the results table), ``predictions.parquet`` (every test sentence's
gold and predicted tags, for paired bootstrap intervals), ``embedding_rows.csv`` (the share of each
language's embedding rows zeroed, :mod:`polycompress.compress.pruning.rows`), for structured methods
``structure.json`` (the heads and FFN units kept in each layer) and, written last, ``done.json``; a folder without ``done.json`` is an unfinished run and is redone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Sequence
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import languages as language_table
from .artifacts import write_csv, write_json, write_parquet
from .config import IMPORTANCE_SENTENCES_PER_LANGUAGE, RunConfig
from .corpora import corpus_words, load_language, source_fingerprint, subsample, subsample_indices
from .evaluation import entity_overlap, score, surface_forms
from .perturb import SCOPES, UNSEEN, donor_words, perturbed_test_sets
from .compress.pruning import METHODS, Schedule, SparsityReport
from .compress.pruning.schedule import run_schedule
from .compress.pruning.dynamic import DynamicGradientPruner
from .compress.pruning.dynamic_l0 import DynamicL0Pruner
from .compress.pruning.l0_subnetworks import LanguageL0Pruner
from .compress.pruning.subnetworks import LanguageGradientPruner
from .compress.pruning.rows import language_rows, mention_words
from .settings import cache_root
from .training import (
    Encoded, TrainResult, check_precision, encode, predict, resolve_device, sorted_batches, to_device, total_steps,
    train,
)

DATA_SEED = 0  # sub-samples are the same for every seed and method: comparisons are paired
EVAL_BATCH = 64
#: padded pieces per evaluation batch at most (64 sentences of 32 pieces; training.predict)
EVAL_TOKENS = 2048
EVAL_MAX_LENGTH = 512  # evaluation never cuts a sentence short of the model's limit

RESULT_COLUMNS = [
    "run_id", "setting", "train_languages", "language", "model", "method", "scope", "embedding_pool", "subnetworks",
    "granularity",
    "target_sparsity", "achieved_sparsity", "seed", "test_set", "f1", "precision", "recall", "n_sentences",
    "n_mentions", "f1_PER", "f1_ORG", "f1_LOC", "entity_overlap_unique", "entity_overlap_occurrences",
    "sparsity_share_of_all", "train_size", "epochs", "words_unscored", "test_set_note", "donor_languages", "device",
    "arithmetic",  # RunConfig.precision, the passes' arithmetic (not seqeval's precision)
    "quantization",  # "none" (the model as trained) or a post-training quantization of it
    "model_bytes",  # bytes of the weights as saved (runs with quantizations; else empty)
    "prune_at", "recovery_epochs",  # when IMP pruned: before, during or after fine-tuning
    "distill", "parameters",  # a distilled student (RunConfig.distill) and the evaluated model's size
    "dynamic",  # a subnetwork of a Dynamic Sparsification run (RunConfig.dynamic), scored at target_sparsity
]
TEST_SETS = ("regular", *SCOPES)
#: columns a scoring fills (seqeval's, and what depends on the predictions)
METRIC_COLUMNS = ("f1", "precision", "recall", "n_mentions", "f1_PER", "f1_ORG", "f1_LOC", "words_unscored",
                  "n_sentences", "test_set_note")


def test_set_names(config: RunConfig) -> tuple[str, ...]:
    """The test sets a run scores: :data:`TEST_SETS`, and :data:`~polycompress.perturb.UNSEEN`
    when ``config.unseen_mentions``; the regular one alone when not ``config.perturbed``."""
    if not config.perturbed:
        return ("regular",)
    return (*TEST_SETS, UNSEEN) if config.unseen_mentions else TEST_SETS


PREDICTION_COLUMNS = ["run_id", "language", "test_set", "sentence", "gold", "pred"]


@dataclass
class RunOutput:
    rows: pd.DataFrame
    predictions: pd.DataFrame  # PREDICTION_COLUMNS; ``sentence`` indexes the regular test sample
    embedding_rows: pd.DataFrame  # pruning.rows.ROW_COLUMNS
    sparsity: SparsityReport
    curve: pd.DataFrame
    seconds: float


def resolve_model(config: RunConfig) -> str:
    """The model folder: the source itself, or a vocabulary-trimmed copy cached per language set."""
    from .encoders import vocab
    from .models import resolve

    source = resolve(config.model)
    if not config.vocab_languages:
        return source
    parts: list = [source, sorted(config.vocab_languages)]
    if config.corpora:  # a corpus of one's own changes with its files (the mirror's do not)
        parts.append({code: source_fingerprint(code) for code in sorted(config.corpora)})
    key = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:12]
    out = cache_root() / "models" / f"trim-{key}"
    if (out / "polycompress_trim.json").is_file():
        return str(out)
    words = [w for code in sorted(config.vocab_languages) for w in vocabulary_words(code)]
    # Runs side by side (Ray) on a fresh cache all make this folder at once: each trims into a
    # folder of its own and renames it into place; the first rename wins and later ones are
    # dropped, never replacing a folder that a run may already be loading from.
    mine = out.with_name(f"{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    vocab.trim(Path(source), words, mine)
    try:
        os.rename(mine, out)
    except OSError:
        if not (out / "polycompress_trim.json").is_file():
            raise
        shutil.rmtree(mine, ignore_errors=True)  # the same trim, made by another run first
    return str(out)


def vocabulary_words(code: str) -> list[str]:
    """Every word a run involving ``code`` may feed the model: all splits of its corpus and
    every donor mention its perturbed test sets can contain."""
    return corpus_words(code) + donor_words(code)


def embedding_pool(config: RunConfig) -> str:
    """The results' ``embedding_pool``: the rows the embedding sparsity was taken over ("full" or
    "trimmed"), "rank" where structured pruning removes rank components of the model's own word
    embeddings, "none" for runs that do not prune the embeddings."""
    if config.scope != "incl_embeddings" or config.method == "dense":
        return "none"
    if config.method != "imp":  # structured: the rank of the model's own word embeddings
        return "rank"
    return config.embedding_pool if config.vocab_languages else "full"


def outside_rows(config: RunConfig, folder: str) -> dict[str, torch.Tensor]:
    """For IMP of the embeddings over the full vocabulary of a trimmed model: the pre-trained
    word-embedding rows the model in ``folder`` lacks (``{"word_embeddings.weight": rows x d}``),
    which the pruner ranks with the model's own rows (MagnitudePruner ``outside``); else {}."""
    if not (config.pools_embeddings() and config.embedding_pool == "full" and config.method == "imp"):
        return {}
    from .encoders import vocab

    return {"word_embeddings.weight": vocab.removed_rows(folder)}


def load_data(config: RunConfig) -> tuple[dict, dict, dict, dict]:
    """Training splits, validation splits, test sets (regular and perturbed) and unavailability
    notes per language.

    Sub-samples use DATA_SEED; perturbed sets hold the same sentences as the regular sample
    (each perturbed as in the whole perturbed split), so every comparison is paired.
    """
    train_sets, dev_sets, test_sets, notes = {}, {}, {}, {}
    for code in config.languages:
        ds, _ = load_language(code)
        tr, te = ds["train"], ds["test"]
        if config.train_size is not None and config.train_size < len(tr):
            tr = subsample(tr, config.train_size, DATA_SEED)
        keep = None
        if config.eval_size is not None and config.eval_size < len(te):
            keep = subsample_indices(len(te), config.eval_size, DATA_SEED)
        sets = {"regular": te.select(keep) if keep is not None else te}
        notes[code] = {}
        # only the kept sentences are perturbed: the same as cutting the whole perturbed split
        scopes = test_set_names(config)[1:]
        names = tr.features["ner_tags"].feature.names
        seen = set(surface_forms(tr["tokens"], [[names[i] for i in t] for t in tr["ner_tags"]]))
        for scope, p in (perturbed_test_sets(code, config.perturbation_seed, te, rows=keep, scopes=scopes,
                                             seen=seen) if scopes else {}).items():
            if p.available:
                sets[scope] = p.dataset
            else:
                notes[code][scope] = f"unavailable: {p.reason}"
        if train_sets and names != next(iter(train_sets.values())).features["ner_tags"].feature.names:
            raise ValueError(f"{code!r} is tagged {names}, unlike the run's other languages")
        train_sets[code] = tr
        dev_sets[code] = ds["validation"]
        test_sets[code] = sets
    for code in config.eval_languages:  # zero-shot: the regular sample alone, as for a training language
        te = load_language(code)[0]["test"]
        if config.eval_size is not None and config.eval_size < len(te):
            te = te.select(subsample_indices(len(te), config.eval_size, DATA_SEED))
        if te.features["ner_tags"].feature.names != names:
            raise ValueError(f"eval language {code!r} is tagged {te.features['ner_tags'].feature.names}, the "
                             f"training languages {names}: a zero-shot score needs the same tag set")
        test_sets[code] = {"regular": te}
        notes[code] = {}
    return train_sets, dev_sets, test_sets, notes


def importance_data(config: RunConfig, tokenizer, dev_sets: dict, languages: Sequence[str] | None = None) -> Encoded:
    """Development sentences for importance-based pruning: :data:`IMPORTANCE_SENTENCES_PER_LANGUAGE`
    from each training language's validation split (DATA_SEED; all of it where it is smaller), of
    ``languages`` only if given (non-shared subnetworks: the same sentences, one language's)."""
    per_language = IMPORTANCE_SENTENCES_PER_LANGUAGE
    tokens, tags = [], []
    for code in languages or config.languages:
        dev = dev_sets[code]
        if per_language < len(dev):
            dev = subsample(dev, per_language, DATA_SEED)
        tokens += dev["tokens"]
        tags += dev["ner_tags"]
    return encode(tokenizer, tokens, tags, config.max_length)


def development_batches(config: RunConfig, tokenizer, dev_sets: dict, code: str | None = None) -> list[dict]:
    """The batches importance is measured on (:func:`importance_data`), of every training
    language or of ``code`` alone, in ``config.batch_size``. A batch holds one language's
    sentences, sorted by length within the language: little padding, and no language's gradient
    is averaged with another's before its absolute value is taken (gradient_importance sums
    |dL/dg| batch by batch)."""
    return [b for c in ([code] if code is not None else config.languages)
            for b in sorted_batches(importance_data(config, tokenizer, dev_sets, [c]),
                                    config.batch_size, tokenizer.pad_token_id)]


def distil(config: RunConfig, teacher, fine_tune, trained: TrainResult | None):
    """The student of a distillation run and its training record. Task-specific: ``teacher`` is
    the fine-tuned model (``trained`` its record, which comes first), the student learns from its
    logits and the tags (``config.temperature``, ``config.distill_alpha``). Task-agnostic:
    ``teacher`` is the pre-trained encoder (nothing was fine-tuned, ``trained`` is None); it
    teaches its hidden states on the training sentences, their tags unused, and then the student
    is fine-tuned."""
    from .compress.distillation import hidden_state_loss, make_student, task_specific_loss

    student = make_student(teacher, config.student_layers, config.student_heads)
    if config.distill == "task_specific":
        return student, trained.then(fine_tune(config.epochs, student,
                                               task_specific_loss(teacher, config.temperature, config.distill_alpha)))
    record = fine_tune(config.epochs, student, hidden_state_loss(teacher))
    return student, record.then(fine_tune(config.epochs, student))


def quantized_rows(config: RunConfig, model, tokenizer, test_sets: dict, names: list[str],
                   rows: list[dict]) -> list[dict]:
    """Rows of the quantized copies of ``model`` (``config.quantizations``, on the CPU): each
    language's regular test set, as ``rows`` (the model as trained) score it; the float model's
    regular rows get its ``model_bytes``. A method that cannot run here gives rows without a
    score whose note carries the library's reason."""
    from .compress.quantization import QuantizationUnavailable, quantize, saved_bytes

    model = model.to("cpu").eval()
    regular = [r for r in rows if r["test_set"] == "regular"]
    float_bytes = saved_bytes(model)
    for r in regular:
        r["model_bytes"] = float_bytes
    out = []
    for method in config.quantizations:
        try:
            quantized, note = quantize(model, method), ""
            size = saved_bytes(quantized)
        except QuantizationUnavailable as err:
            quantized, note, size = None, f"unavailable on this device: {err}", None
        for base in regular:
            row = {k: v for k, v in base.items() if k not in METRIC_COLUMNS}
            row.update(quantization=method, arithmetic="int8", model_bytes=size, device="cpu")
            test = test_sets[base["language"]].get("regular")
            if quantized is None or test is None:
                out.append({**row, "n_sentences": 0, "test_set_note": note or base.get("test_set_note", "")})
                continue
            gold = [[names[i] for i in t] for t in test["ner_tags"]]
            enc = encode(tokenizer, test["tokens"], test["ner_tags"], EVAL_MAX_LENGTH)
            # fp32 here: the quantized layers compute in int8 whatever autocast says
            pred_ids = predict(quantized, enc, EVAL_BATCH, tokenizer.pad_token_id, "cpu", "fp32", EVAL_TOKENS)
            pred = [[names[i] if i >= 0 else "O" for i in p] for p in pred_ids]
            out.append({**row, **score(gold, pred), "n_sentences": len(test), "words_unscored": enc.words_cut,
                        "test_set_note": ""})
    return out


def run(config: RunConfig, out_dir: Path | str, progress: bool = True, device: str = "auto",
        threads: int | None = None) -> RunOutput:
    """Train, prune, evaluate and write the run's folder (see the module docstring).

    ``device`` ("auto", "cpu" or "cuda") and ``threads`` (torch's intra-op threads; None keeps
    torch's default, one per core) say where the run computes, not what: they are not part of
    ``config`` and so not of the run id. Both are recorded in ``done.json`` (and the device in
    every result row), since they can change the last bits of the arithmetic (see README,
    "Reproducibility").
    """
    from transformers import AutoModelForTokenClassification, AutoTokenizer, set_seed

    out_dir = Path(out_dir)
    (out_dir / "done.json").unlink(missing_ok=True)
    device = resolve_device(device)  # fails before any data loads
    precision = config.precision
    warning = check_precision(device, precision)  # fails before any data loads
    if warning:
        warnings.warn(warning, stacklevel=2)
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be a positive number of threads or None, got {threads}")
        torch.set_num_threads(threads)
    start = time.perf_counter()
    write_json(out_dir / "params.json", {"run_id": config.run_id, **config.canonical()})

    train_sets, dev_sets, test_sets, notes = load_data(config)
    names = next(iter(train_sets.values())).features["ner_tags"].feature.names
    folder = resolve_model(config)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    set_seed(config.seed)  # before the head is initialised
    model = AutoModelForTokenClassification.from_pretrained(
        folder, num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}
    ).to(device)  # before the pruner: its masks and gates are made where the weights are

    # equal exposure (language_epochs): a language with more epochs than the union appears that
    # many times in each of its epochs, so each sentence is seen as often as when trained alone
    reps = [config.repeats(code) for code in config.languages]
    tokens = [t for code, r in zip(config.languages, reps) for _ in range(r) for t in train_sets[code]["tokens"]]
    tags = [t for code, r in zip(config.languages, reps) for _ in range(r) for t in train_sets[code]["ner_tags"]]
    groups = [k for k, (code, r) in enumerate(zip(config.languages, reps)) for _ in range(r * len(train_sets[code]))]
    data = encode(tokenizer, tokens, tags, config.max_length)
    steps = total_steps(len(data), config.batch_size, config.epochs)
    # prune_at before / after: the masks are set once (on the pre-trained or the fine-tuned
    # weights) and then held
    schedule = run_schedule(config.schedule, steps, max(len(train_sets[c]) for c in config.languages),
                            config.sparsity, config.prune_at)
    dev: dict[str | None, list[dict]] = {}  # loaded on first use: only importance-based methods ask

    def importance_batches(code: str | None = None) -> list[dict]:
        """Development batches of every training language, or of ``code`` alone (on ``device``)."""
        if code not in dev:
            dev[code] = development_batches(config, tokenizer, dev_sets, code)
        return [to_device(b, device) for b in dev[code]]

    non_shared = config.subnetworks == "non_shared"
    if non_shared:  # one subnetwork per language (Li et al. 2022): grad, or their improved L0
        method = {"grad": LanguageGradientPruner, "l0": LanguageL0Pruner}[config.method]
    else:
        method = ({"grad": DynamicGradientPruner, "l0": DynamicL0Pruner}[config.method] if config.dynamic
                  else METHODS[config.method])
    pruner = method(model, schedule, config.scope, config.granularity,
                    importance_batches=importance_batches, languages=config.languages,
                    # the prior of L0's diversity term: languages of one family are not pushed apart
                    # (None: a family that relates a language to no other, languages.related)
                    families={c: (language_table.get(c).family
                                  if language_table.related(language_table.get(c), language_table.get(c), "family")
                                  else None) for c in config.languages},
                    outside=outside_rows(config, folder), levels=config.dynamic, seed=config.seed,
                    precision=config.precision)  # of grad's importance passes

    def fine_tune(epochs: float, net=None, loss_fn=None) -> TrainResult:
        return train(
            model if net is None else net, data, epochs=epochs, batch_size=config.batch_size,
            learning_rate=config.learning_rate, loss_fn=loss_fn,
            weight_decay=config.weight_decay, seed=config.seed, pad_id=tokenizer.pad_token_id,
            after_step=pruner.step, sparsity=lambda: getattr(pruner, "current", 0.0),
            penalty=getattr(pruner, "penalty", None), progress=progress,
            # non-shared: every batch one language's, through that language's subnetwork
            batch_groups=groups if non_shared else None, before_batch=pruner.use_group if non_shared else None,
            # the L0 gates' own optimizer: its gradients come from the same (maybe scaled) loss
            extra_optimizers=[pruner.optimizer] if hasattr(pruner, "optimizer") else [],
            device=device, precision=precision, warmup=config.warmup,
            # IMP's own model only (a distilled student is another model)
            on_optimizer=getattr(pruner, "attach", None) if net is None else None,
        )

    if config.prune_at == "before":
        pruner.prune_to(config.sparsity, 0)
    # task-agnostic distillation needs no fine-tuned teacher: the pre-trained encoder teaches
    result = None if config.distill == "task_agnostic" else fine_tune(config.epochs)
    if config.prune_at == "after":
        pruner.prune_to(config.sparsity, result.steps)
        if config.recovery_epochs:
            # a second fine-tuning with the masks held: a fresh optimizer and learning-rate
            # decay from config.learning_rate, as when a pruned model is fine-tuned again
            result = result.then(fine_tune(config.recovery_epochs))
    if config.distill != "none":
        # the model (fine-tuned above, or pre-trained) teaches; the student is what the run evaluates
        model, result = distil(config, model, fine_tune, result)
        pruner = METHODS["dense"](model, None, config.scope, config.granularity)
    pruner.finish()
    report = pruner.report()

    donors = config.canonical()["donors"]
    parameters = sum(p.numel() for p in model.parameters())  # the evaluated model's (a student's)
    rows, predictions = [], []

    encoded: dict[tuple[str, str], Encoded] = {}

    def scored(net, code: str, test_name: str, common: dict, keep: bool, train_forms=None) -> dict:
        """``common`` with ``net``'s scores on ``code``'s ``test_name`` set (predictions kept if
        ``keep``; entity overlap with ``train_forms`` where given)."""
        test = test_sets[code].get(test_name)
        if test is None:  # no donors for this scope: an explicit row, no score
            return {**common, "n_sentences": 0, "test_set_note": notes[code][test_name]}
        gold = [[names[i] for i in t] for t in test["ner_tags"]]
        if (code, test_name) not in encoded:  # once per set: a DS run scores each set at every level
            encoded[code, test_name] = encode(tokenizer, test["tokens"], test["ner_tags"], EVAL_MAX_LENGTH)
        enc = encoded[code, test_name]
        pred_ids = predict(net, enc, EVAL_BATCH, tokenizer.pad_token_id, device, precision, EVAL_TOKENS)
        pred = [[names[i] if i >= 0 else "O" for i in p] for p in pred_ids]  # unscored words -> O, counted
        if keep:
            predictions.extend({"run_id": config.run_id, "language": code, "test_set": test_name, "sentence": k,
                                "gold": g, "pred": p} for k, (g, p) in enumerate(zip(gold, pred)))
        row = {**common, **score(gold, pred), "n_sentences": len(test), "words_unscored": enc.words_cut,
               "test_set_note": ""}
        if train_forms is not None:
            overlap = entity_overlap(train_forms, surface_forms(test["tokens"], gold))
            row.update(entity_overlap_unique=overlap["unique"], entity_overlap_occurrences=overlap["occurrences"])
        return row

    def common_row(code: str, test_name: str) -> dict:
        trained = code in config.languages
        return {
            "run_id": config.run_id, "setting": config.setting, "train_languages": ",".join(config.languages),
            "language": code, "model": config.model, "method": config.method,
            "scope": config.scope if config.method != "dense" else "none", "granularity": config.granularity,
            "embedding_pool": embedding_pool(config),
            "subnetworks": config.subnetworks, "target_sparsity": config.sparsity,
            "achieved_sparsity": pruner.achieved(code) if non_shared else report.achieved, "seed": config.seed,
            "test_set": test_name, "sparsity_share_of_all": report.share_of_all,
            # an eval language (zero-shot) was not trained on: 0 sentences, 0 epochs
            "train_size": len(train_sets[code]) if trained else 0,
            "epochs": config.epochs * config.repeats(code) if trained else 0.0, "device": device,
            "arithmetic": precision, "quantization": "none",
            "prune_at": config.prune_at, "recovery_epochs": config.recovery_epochs,
            "distill": config.distill, "parameters": parameters, "dynamic": bool(config.dynamic),
            "donor_languages": " ".join(donors.get(code, {}).get(test_name, [] if test_name == "regular" else [code])),
        }

    train_forms = {code: surface_forms(train_sets[code]["tokens"], [[names[i] for i in t] for t in train_sets[code]["ner_tags"]])
                   for code in config.languages}
    # Dynamic Sparsification: every level is scored on its physically smaller model (the one a
    # user deploys; predicting the nine levels took 30% less time than on the gated model here)
    evaluated = pruner.compacted(config.sparsity) if config.dynamic else model
    for code in config.languages:
        if non_shared:
            pruner.use(code)  # each language is evaluated with its own subnetwork
        for test_name in test_set_names(config):
            rows.append(scored(evaluated, code, test_name, common_row(code, test_name), True, train_forms[code]))
    for code in config.eval_languages:
        rows.append(scored(evaluated, code, "regular", common_row(code, "regular"), True))
    # the rows above are the largest level's (the run's sparsity); each smaller level scores every
    # test set through its subnetwork (predictions kept for the run's own)
    for level in sorted(config.dynamic)[:-1]:
        pruner.use(level)
        level_report = pruner.report()  # the zeros this level's gates stand for
        evaluated = pruner.compacted(level)
        for code in (*config.languages, *config.eval_languages):
            for test_name in test_set_names(config) if code in config.languages else ("regular",):
                common = {**common_row(code, test_name), "target_sparsity": level, "achieved_sparsity": pruner.achieved(level),
                          "sparsity_share_of_all": level_report.share_of_all}
                rows.append(scored(evaluated, code, test_name, common, False, train_forms.get(code)))
    del evaluated
    if config.dynamic:
        pruner.use(config.sparsity)
    after_rows: list[dict] = []
    # the rows a trimmed model lacks, read once for every copy (incl_embeddings only)
    outside = outside_rows(config, folder) if config.prune_after else {}
    for sparsity in config.prune_after:
        # a copy pruned once, by magnitude, as the trained weights are (prune_at "after", no recovery)
        pruned = deepcopy(model)
        after = METHODS["imp"](pruned, Schedule.held(sparsity), config.scope, config.granularity,
                               outside=outside)
        after.prune_to(sparsity, result.steps)
        after.finish()
        achieved = after.report().achieved
        for code in (*config.languages, *config.eval_languages):
            common = {**common_row(code, "regular"), "method": "imp", "scope": config.scope, "target_sparsity": sparsity,
                      "achieved_sparsity": achieved, "prune_at": "after", "recovery_epochs": 0.0}
            after_rows.append(scored(pruned, code, "regular", common, False))
        del pruned, after
    if config.quantizations:
        rows += quantized_rows(config, model, tokenizer, test_sets, names, rows)
    rows += after_rows
    table = pd.DataFrame(rows).reindex(columns=RESULT_COLUMNS)
    predictions = pd.DataFrame(predictions, columns=PREDICTION_COLUMNS)
    embedding = embedding_report(model, tokenizer, config, train_sets, test_sets, names)
    curve = pd.DataFrame(result.curve)
    seconds = time.perf_counter() - start
    write_csv(out_dir / "sparsity.csv", report.table())
    write_csv(out_dir / "curve.csv", curve)
    write_parquet(out_dir / "rows.parquet", table)
    write_parquet(out_dir / "predictions.parquet", predictions)
    write_csv(out_dir / "embedding_rows.csv", embedding)
    # structured methods: which heads and FFN units survived, per layer (and language if non-shared)
    if non_shared:
        structures = pruner.structures
    elif config.dynamic:
        structures = {"all": pruner.structures[config.sparsity]}
    else:
        structure = getattr(pruner, "structure", None)
        structures = {} if structure is None else {"all": structure}
    if structures:
        write_json(out_dir / "structure.json", {
            "units": next(iter(structures.values())).units.shape[1],
            # units_bits: which units each layer kept, packed (numpy.packbits, big-endian bit order) as hex
            # ranks: the word embeddings' rank components kept (grad or l0 with incl_embeddings)
            "languages": {code: {"heads": s.heads.int().tolist(), "units_kept": s.units.sum(1).tolist(),
                                 "units_bits": [bytes(np.packbits(row.numpy())).hex() for row in s.units],
                                 **({"ranks": s.ranks.int().tolist()} if s.ranks is not None else {})}
                          for code, s in structures.items()},
            # Dynamic Sparsification: every level's subnetwork (nested), by sparsity
            **({"levels": {str(level): {"heads": s.heads.int().tolist(), "units_kept": s.units.sum(1).tolist(),
                                        **({"ranks": s.ranks.int().tolist()} if s.ranks is not None else {})}
                           for level, s in sorted(pruner.structures.items())}} if config.dynamic else {})})
    write_json(out_dir / "done.json", {
        "run_id": config.run_id, "seconds": round(seconds, 1), "train_seconds": round(result.seconds, 1),
        "steps": result.steps, "train_tokens": result.tokens, "padded_tokens": result.padded_tokens,
        "words_cut_in_training": data.words_cut, "schedule": schedule.__dict__, "mask_updates": pruner.history,
        "structure_fixed_at": getattr(pruner, "frozen_at", None),
        # Dynamic Sparsification: the step of its one ranking, and the steps each level trained
        "ranked_at": getattr(pruner, "ranked_at", None),
        "steps_per_level": ({str(k): v for k, v in pruner.steps_per_level().items()} if config.dynamic else None),
        # L0 with Dynamic Sparsification: its constraint's multiplier at the end, how far the
        # expected sparsity missed the drawn level over the last tenth of the steps, and how
        # far the learned gates moved each level from the ranking they started from
        "gates": ({"multiplier": pruner.multiplier,
                   # per level: components the learned gates kept differently from the gradient ranking
                   "components_moved": {str(k): v for k, v in pruner.moved.items()},
                   "mean_miss_last_tenth": float(np.mean(pruner.misses[-max(1, len(pruner.misses) // 10):]))
                   if pruner.misses else None} if isinstance(pruner, DynamicL0Pruner) else None),
        # embeddings pruned over the full vocabulary of a trimmed model: what the unused rows lost
        "outside_rows": pruner.outside_report() if getattr(pruner, "outside", None) else None,
        "model_folder": folder, "torch_threads": torch.get_num_threads(),
        # what can change the last bits of the results besides the parameters (README, "Reproducibility")
        "device": device, "precision": precision, "torch_version": torch.__version__,
        "gpu": torch.cuda.get_device_name() if device == "cuda" else None, "cpu": _cpu_name(),
    })
    return RunOutput(table, predictions, embedding, report, curve, seconds)


def _cpu_name() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else what :mod:`platform` knows."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def embedding_report(model, tokenizer, config: RunConfig, train_sets: dict, test_sets: dict, names: list[str]) -> pd.DataFrame:
    """Share of each language's word-embedding rows zeroed (all of its text; its mentions).

    "Its text" is what the run fed the model: the training sample and the regular test sample.
    """
    groups = {}
    for code in config.languages:
        parts = [train_sets[code], test_sets[code]["regular"]]
        sentences = [t for part in parts for t in part["tokens"]]
        mention_lists = [w for part in parts
                         for w in mention_words(part["tokens"], [[names[i] for i in t] for t in part["ner_tags"]])]
        groups[code] = {"vocabulary": sentences, "mentions": mention_lists}
    weight = model.get_input_embeddings().weight
    table = language_rows(weight, tokenizer, groups)
    table.insert(0, "run_id", config.run_id)
    return table
