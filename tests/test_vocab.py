"""Trimming the vocabulary must not change anything the corpora feed the model."""

import json

import numpy as np
import torch
from safetensors.torch import load_file

from polycompress.corpora import load_language
from polycompress.encoders.vocab import trim


def test_trim_keeps_segmentation_rows_and_outputs(e5_folder, mirror, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    corpus = {code: load_language(code, root=mirror)[0] for code in ("de", "ja", "amh")}
    words = [w for ds in corpus.values() for split in ds.values() for t in split["tokens"] for w in t]
    out = tmp_path / "trimmed"
    report = trim(e5_folder, words, out)
    assert report.words_segmented_differently == 0
    assert report.pieces_after < 10_000 < report.pieces_before

    kept = np.load(out / "kept_ids.npy")
    assert kept[:4].tolist() == [0, 1, 2, 3]  # <s> <pad> </s> <unk> keep their ids
    full_rows = load_file(str(e5_folder / "model.safetensors"))["embeddings.word_embeddings.weight"]
    small_rows = load_file(str(out / "model.safetensors"))["embeddings.word_embeddings.weight"]
    assert torch.equal(small_rows, full_rows[torch.from_numpy(kept)])
    assert json.loads((out / "config.json").read_text())["vocab_size"] == len(kept)

    # Same sentences through both models: identical hidden states.
    tok_a, tok_b = AutoTokenizer.from_pretrained(e5_folder), AutoTokenizer.from_pretrained(out)
    model_a = AutoModel.from_pretrained(e5_folder, add_pooling_layer=False).eval()
    model_b = AutoModel.from_pretrained(out, add_pooling_layer=False).eval()
    batch = corpus["de"]["test"]["tokens"][:4] + corpus["amh"]["test"]["tokens"][:4]
    enc_a = tok_a(batch, is_split_into_words=True, padding=True, return_tensors="pt")
    enc_b = tok_b(batch, is_split_into_words=True, padding=True, return_tensors="pt")
    assert torch.equal(torch.from_numpy(kept)[enc_b["input_ids"]], enc_a["input_ids"])
    with torch.inference_mode():
        a, b = model_a(**enc_a).last_hidden_state, model_b(**enc_b).last_hidden_state
    assert torch.allclose(a, b, atol=1e-5)
