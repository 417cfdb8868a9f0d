"""Scoring: seqeval micro precision/recall/F1 on word-level IOB2 tags, and entity overlap."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities

from .tags import COMMON_TYPES, mentions


def score(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro P/R/F1 over all mentions, and F1 per entity type (``f1_PER``, ...).

    seqeval's default (conlleval) mode: a predicted I-X after O opens a mention.
    """
    gold, pred = [list(g) for g in gold], [list(p) for p in pred]
    if any(len(g) != len(p) for g, p in zip(gold, pred)) or len(gold) != len(pred):
        raise ValueError("gold and predicted tag sequences differ in shape")
    out = {
        "precision": float(precision_score(gold, pred, zero_division=0)),
        "recall": float(recall_score(gold, pred, zero_division=0)),
        "f1": float(f1_score(gold, pred, zero_division=0)),
    }
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    for kind in COMMON_TYPES:
        out[f"f1_{kind}"] = float(report[kind]["f1-score"]) if kind in report else float("nan")
    out["n_mentions"] = sum(len(mentions(g)) for g in gold)
    return out


def surface_forms(tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> list[str]:
    """Every mention's surface form (its tokens joined by one space), in order, with repeats."""
    return [" ".join(toks[s:e]) for toks, tg in zip(tokens, tags) for _, s, e in mentions(tg)]


def entity_overlap(train_forms: Sequence[str], test_forms: Sequence[str]) -> dict[str, float]:
    """Share of test mentions whose surface form is also a training mention.

    ``unique``: over distinct test surface forms; ``occurrences``: over every test mention.
    """
    seen = set(train_forms)
    distinct = set(test_forms)
    return {
        "unique": sum(f in seen for f in distinct) / len(distinct) if distinct else float("nan"),
        "occurrences": sum(f in seen for f in test_forms) / len(test_forms) if test_forms else float("nan"),
    }


def sentence_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> np.ndarray:
    """Per sentence: correct, predicted and gold mentions, shape (n_sentences, 3), int.

    The same mentions seqeval counts (its default mode), so that summed over sentences they
    give its micro F1: ``2 * correct / (predicted + gold)``. Resampling sentences and summing
    these rows is how the bootstrap recomputes F1 without re-running seqeval.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold and {len(pred)} predicted sentences")
    out = np.zeros((len(gold), 3), dtype=np.int64)
    for k, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {k}: {len(g)} gold and {len(p)} predicted tags")
        true, found = set(get_entities(list(g))), set(get_entities(list(p)))
        out[k] = (len(true & found), len(found), len(true))
    return out
