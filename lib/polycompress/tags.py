"""IOB2 tags: the label sets, validation and (counted) repair or conversion, and tag-set harmonisation.

Other schemes (IOB1, BIOES) are converted to IOB2 by reading their mentions as conlleval and
seqeval's default mode do (:func:`seqeval.metrics.sequence_labeling.get_entities`: an I-X that
does not continue an X mention starts one, E-X and S-X end one) and writing those mentions in
IOB2. ``seqeval.scheme`` was the other candidate: its ``auto_detect`` cannot tell IOB1 from IOB2
(their prefixes are the same), and its strict ``Entities`` drops ill-formed mentions without
a count, which a loader here may not do.
"""

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


def check_tag(tag: str, types: Sequence[str] | None, prefixes: str = "BI") -> str | None:
    """None if ``tag`` is O or P-X with P one of ``prefixes`` and X in ``types`` (any X if
    ``types`` is None); otherwise why not. ``prefixes`` "BIES" admits IOB1, IOB2 and BIOES."""
    if tag == "O":
        return None
    prefix, _, kind = tag.partition("-")
    if prefix not in prefixes or len(prefix) != 1 or not kind:
        if prefixes == "BI":
            return f"tag {tag!r} is not IOB2 (O, B-TYPE or I-TYPE)"
        return f"tag {tag!r} is not IOB1, IOB2 or BIOES (O, or TYPE after one of {', '.join(p + '-' for p in prefixes)})"
    if types is not None and kind not in types:
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


def to_iob2(tags: Sequence[str]) -> tuple[list[str], int]:
    """IOB2 tags for the mentions of ``tags`` (IOB1, IOB2 or BIOES, read leniently as in the
    module docstring), and how many tags changed. On IOB2 input this is :func:`repair_iob2`."""
    out = ["O"] * len(tags)
    for kind, start, end in mentions(tags):
        out[start] = f"B-{kind}"
        for i in range(start + 1, end):
            out[i] = f"I-{kind}"
    return out, sum(a != b for a, b in zip(tags, out))


def scheme_of(tags: Sequence[str]) -> str:
    """The tagging scheme a file's tags (all sentences, joined with O between them) follow:

    - "BIOES" if any tag is E-X or S-X;
    - "IOB2" if every mention starts with B-X;
    - "IOB1" if none does where it need not (B-X only right after an X mention, and some
      mention starts with I-X): CoNLL-2003's original tags;
    - "IOB2 with violations" otherwise: mentions start both ways (MasakhaNER's Kinyarwanda has
      one I-ORG after O).
    """
    if any(t[:2] in ("E-", "S-") for t in tags):
        return "BIOES"
    i_starts = b_fresh = 0
    prev = "O"
    for tag in tags:
        continues = prev != "O" and prev[2:] == tag[2:]
        if tag.startswith("I-") and not continues:
            i_starts += 1
        elif tag.startswith("B-") and not continues:
            b_fresh += 1
        prev = tag
    if i_starts == 0:
        return "IOB2"
    return "IOB1" if b_fresh == 0 else "IOB2 with violations"


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
