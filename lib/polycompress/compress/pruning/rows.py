"""What pruning the embeddings removes from each language: its vocabulary rows, zeroed.

Magnitude pruning of the word-embedding matrix (V x d) zeroes single entries, not rows; a
language loses what the rows *it uses* lose. For a language we take the pieces of the words it
actually feeds the model (its training sample and its test sample) and, separately, the pieces
of the words inside its entity mentions, and report:

- ``rows``: distinct pieces (embedding rows) used;
- ``rows_all_zero``: share of those rows with every entry zeroed (the piece now embeds to 0);
- ``entries_zero``: mean share of zeroed entries over those rows (each row counts once);
- ``entries_zero_by_use``: the same, each row weighted by how often the text uses it.

Shares are fractions in [0, 1].
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import pandas as pd
import torch

from ...tags import mentions

ROW_COLUMNS = ["language", "pieces", "rows", "rows_all_zero", "entries_zero", "entries_zero_by_use"]


def piece_counts(tokenizer, sentences: Iterable[Sequence[str]]) -> Counter:
    """Occurrences of every piece id in the sentences' words (no special tokens)."""
    words = [w for s in sentences for w in s]
    if not words:
        return Counter()
    ids = tokenizer(words, add_special_tokens=False)["input_ids"]
    return Counter(i for word in ids for i in word)


def mention_words(tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> list[list[str]]:
    """The words inside each entity mention, one list per mention."""
    return [list(toks[s:e]) for toks, tg in zip(tokens, tags) for _, s, e in mentions(tg)]


def zeroed_rows(weight: torch.Tensor, counts: Counter) -> dict[str, float]:
    """Statistics of the rows ``counts`` names in ``weight`` (V x d); see the module docstring."""
    if not counts:
        return {"rows": 0, "rows_all_zero": float("nan"), "entries_zero": float("nan"),
                "entries_zero_by_use": float("nan")}
    ids = torch.tensor(sorted(counts))
    if int(ids.max()) >= weight.shape[0]:
        raise ValueError(f"piece id {int(ids.max())} outside an embedding of {weight.shape[0]} rows")
    # (rows,) share of each row zeroed; the rows are gathered where the weight is, then counted here
    zero = (weight.detach()[ids.to(weight.device)] == 0).float().mean(dim=1).cpu()
    uses = torch.tensor([counts[int(i)] for i in ids], dtype=torch.float64)
    return {
        "rows": len(ids),
        "rows_all_zero": float((zero == 1).float().mean()),
        "entries_zero": float(zero.mean()),
        "entries_zero_by_use": float((zero.double() * uses).sum() / uses.sum()),
    }


def language_rows(weight: torch.Tensor, tokenizer, by_language: dict[str, dict[str, list[list[str]]]]) -> pd.DataFrame:
    """One row per (language, pieces) for ``{code: {"vocabulary": sentences, "mentions": ...}}``."""
    rows = []
    for code, groups in by_language.items():
        for group, sentences in groups.items():
            rows.append({"language": code, "pieces": group, **zeroed_rows(weight, piece_counts(tokenizer, sentences))})
    return pd.DataFrame(rows, columns=ROW_COLUMNS)
