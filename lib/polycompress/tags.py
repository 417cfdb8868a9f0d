"""IOB2 tags: the label sets, validation and (counted) repair, and tag-set harmonisation."""

from __future__ import annotations

from collections.abc import Sequence

from seqeval.metrics.sequence_labeling import get_entities

#: The common label set of the study (WikiANN's own order, so hub ClassLabel ids agree).
COMMON_TYPES = ("PER", "ORG", "LOC")
#: MasakhaNER adds DATE; kept only when tags are not harmonised.
ALL_TYPES = ("PER", "ORG", "LOC", "DATE")


def label_names(types: Sequence[str]) -> list[str]:
    """``["O", "B-PER", "I-PER", ...]`` in the order WikiANN and MasakhaNER use."""
    names = ["O"]
    for t in types:
        names += [f"B-{t}", f"I-{t}"]
    return names


def check_tag(tag: str, types: Sequence[str]) -> str | None:
    """None if ``tag`` is O, B-X or I-X with X in ``types``; otherwise why not."""
    if tag == "O":
        return None
    prefix, _, kind = tag.partition("-")
    if prefix not in ("B", "I") or not kind:
        return f"tag {tag!r} is not IOB2 (O, B-TYPE or I-TYPE)"
    if kind not in types:
        return f"unknown entity type {kind!r} in tag {tag!r} (known: {', '.join(types)})"
    return None


def iob2_violations(tags: Sequence[str]) -> list[int]:
    """Positions of I-X tags that do not continue an X mention (I-X after O or after Y≠X)."""
    bad = []
    prev = "O"
    for i, tag in enumerate(tags):
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            bad.append(i)
        prev = tag
    return bad


def repair_iob2(tags: Sequence[str]) -> tuple[list[str], int]:
    """Turn every violating I-X into B-X: the reading conlleval and seqeval give them anyway.

    Returns the repaired tags and how many were changed.
    """
    fixed = list(tags)
    bad = iob2_violations(tags)
    for i in bad:
        fixed[i] = "B-" + fixed[i][2:]
    return fixed, len(bad)


def harmonise(tags: Sequence[str], keep: Sequence[str] = COMMON_TYPES) -> tuple[list[str], int]:
    """Map mentions of types outside ``keep`` to O (MasakhaNER DATE -> O).

    Returns the new tags and the number of *mentions* removed (not tokens).
    """
    out = []
    removed = 0
    for tag in tags:
        if tag != "O" and tag[2:] not in keep:
            removed += tag.startswith("B-")
            out.append("O")
        else:
            out.append(tag)
    return out, removed


def mentions(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entity mentions of valid IOB2 tags as ``(type, start, end)``, ``end`` exclusive."""
    return [(kind, start, end + 1) for kind, start, end in get_entities(list(tags))]
