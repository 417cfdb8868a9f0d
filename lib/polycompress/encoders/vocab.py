"""Vocabulary trimming ("Load What You Need", Abdaoui et al. 2020).

A 250k-piece XLM-R vocabulary makes the embedding matrix most of e5-small (96M of 118M
parameters), and on a CPU every optimizer step updates all of it. Keeping only the pieces
that the chosen corpora use (plus the special tokens) shrinks the model without changing the
computation on those corpora: the trimmed tokenizer segments every corpus word exactly as the
full one did (:func:`trim` checks this word by word and refuses to write a model otherwise),
and kept rows keep their trained values.

Caveat for analyses of *embedding pruning*: a per-tensor magnitude threshold over a trimmed
embedding matrix differs from one over the full matrix, since the rows removed (most of the
matrix) take part in the ranking there. :func:`removed_rows` gives those rows back, so that a
pruner can rank them with the trimmed ones (RunConfig ``embedding_pool``).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm


@dataclass
class TrimReport:
    """What trimming removed and what it checked."""

    pieces_before: int
    pieces_after: int
    embedding_rows_before: int
    parameters_before: int
    parameters_after: int
    words_checked: int
    words_segmented_differently: int


def _tokenizer(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def used_pieces(folder: Path | str, words: Iterable[str], batch: int = 20_000) -> set[int]:
    """Ids of every piece the tokenizer in ``folder`` uses on ``words`` (each word alone, as
    ``is_split_into_words`` feeds them), plus all special tokens."""
    tok = _tokenizer(Path(folder))
    used = set(tok.all_special_ids)
    unique = sorted(set(words))
    for i in tqdm(range(0, len(unique), batch), desc="pieces used", unit="batch", leave=False):
        for ids in tok(unique[i : i + batch], add_special_tokens=False)["input_ids"]:
            used.update(ids)
    return used


def removed_rows(folder: Path | str):
    """The word-embedding rows (a float tensor, removed pieces x hidden size, in their original
    order) of the model a trimmed model in ``folder`` was made from that trimming left out.

    Fine-tuning the untrimmed model would not change them when no sentence uses them and there
    is no weight decay (their gradient is zero, so Adam's update is too): they are what the full
    matrix holds there at every step.
    """
    import torch
    from safetensors import safe_open

    folder = Path(folder)
    record_file = folder / "polycompress_trim.json"
    if not record_file.is_file():
        raise FileNotFoundError(f"{folder} is not a trimmed model (no polycompress_trim.json)")
    record = json.loads(record_file.read_text(encoding="utf-8"))
    source = Path(record["trimmed_from"])
    keep = torch.from_numpy(np.load(folder / record["kept_original_ids_file"]))
    with safe_open(str(source / "model.safetensors"), framework="pt") as f:
        names = [n for n in f.keys() if n.endswith("word_embeddings.weight")]
        if len(names) != 1:
            raise ValueError(f"{source}/model.safetensors: expected one word-embedding matrix, found {names}")
        full = f.get_tensor(names[0])
    gone = torch.ones(full.shape[0], dtype=torch.bool)
    gone[keep] = False
    return full[gone].float()


def trim(folder: Path | str, words: Iterable[str], out: Path | str) -> TrimReport:
    """Write to ``out`` a copy of the model in ``folder`` keeping only the pieces ``words`` use.

    Kept pieces stay in their original order (so ``<s> <pad> </s> <unk>`` keep ids 0-3). The
    result is checked: every unique word must segment into the same pieces as before.
    """
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoConfig, XLMRobertaTokenizer

    folder, out = Path(folder), Path(out)
    words = sorted(set(words))
    full = _tokenizer(folder)
    keep = np.array(sorted(used_pieces(folder, words)), dtype=np.int64)

    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = spec["model"]["vocab"]  # [[piece, score], ...] in id order
    new_vocab = [(vocab[i][0], float(vocab[i][1])) for i in keep]
    # tokenizer.json stores the charsmap base64-encoded; Precompiled wants the raw bytes.
    charsmap = base64.b64decode(spec["normalizer"]["precompiled_charsmap"]) if spec.get("normalizer") else None
    tok = XLMRobertaTokenizer(vocab=new_vocab, _spm_precompiled_charsmap=charsmap)
    tok.model_max_length = full.model_max_length

    # The check that makes trimming safe: identical segmentation of every corpus word.
    differ = 0
    old_to_piece = full.convert_ids_to_tokens
    for i in tqdm(range(0, len(words), 20_000), desc="checking trimmed tokenizer", leave=False):
        chunk = words[i : i + 20_000]
        a = full(chunk, add_special_tokens=False)["input_ids"]
        b = tok(chunk, add_special_tokens=False)["input_ids"]
        for x, y in zip(a, b):
            if old_to_piece(x) != tok.convert_ids_to_tokens(y):
                differ += 1
    if differ:
        raise RuntimeError(f"trimmed tokenizer segments {differ} of {len(words)} words differently; not writing {out}")

    config = AutoConfig.from_pretrained(folder)
    weights = load_file(str(folder / "model.safetensors"))
    n_before = sum(v.numel() for v in weights.values())
    rows_before = config.vocab_size
    index = torch.from_numpy(keep)
    for name in list(weights):
        if name.endswith("word_embeddings.weight"):
            weights[name] = weights[name].index_select(0, index).contiguous()
    config.vocab_size = len(keep)
    config.pad_token_id = tok.pad_token_id
    n_after = sum(v.numel() for v in weights.values())

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        config.save_pretrained(tmp)
        save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tok.save_pretrained(tmp)
        report = TrimReport(len(vocab), len(keep), rows_before, n_before, n_after, len(words), differ)
        record = {"trimmed_from": str(folder), "kept_original_ids_file": "kept_ids.npy", **report.__dict__}
        np.save(tmp / "kept_ids.npy", keep)
        (tmp / "polycompress_trim.json").write_text(json.dumps(record, indent=2))
        os.chmod(tmp, 0o755)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report
