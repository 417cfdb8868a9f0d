"""Physical removal: a structurally pruned model made genuinely smaller.

:func:`compact` copies a BERT token classifier and slices every layer's Q/K/V rows, attention
output columns and FFN rows/columns down to the kept heads and units of a
:class:`~polycompress.compress.pruning.structured.Structure`. :func:`save` writes it as a folder that loads
with ``transformers`` alone (``trust_remote_code=True``): the modeling file
``compact_model/modeling_pruned_bert.py`` goes into the folder with the weights.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import torch
from torch import nn

from .compact_model.modeling_pruned_bert import PrunedBertConfig
from .embedding_rank import factorised
from .structured import Structure, encoder_layers

MODELING = Path(__file__).parent / "compact_model" / "modeling_pruned_bert.py"


def _slice(linear: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> nn.Linear:
    w = linear.weight.detach()
    b = linear.bias.detach()
    if rows is not None:
        w, b = w[rows], b[rows]
    if cols is not None:
        w = w[:, cols]
    out = nn.Linear(w.shape[1], w.shape[0], dtype=w.dtype)
    with torch.no_grad():
        out.weight.copy_(w)
        out.bias.copy_(b)
    return out


@torch.no_grad()
def compact(model: nn.Module, structure: Structure) -> nn.Module:
    """A copy of ``model`` with pruned heads and FFN units removed (``model`` is unchanged)."""
    small = copy.deepcopy(model)
    heads, units = [], []
    for i, layer in enumerate(encoder_layers(small)):
        att = layer.attention.self
        size = att.attention_head_size
        keep_heads, keep_units = _at_least_one(structure.heads[i]), _at_least_one(structure.units[i])
        rows = keep_heads.repeat_interleave(size)
        att.query, att.key, att.value = (_slice(m, rows=rows) for m in (att.query, att.key, att.value))
        att.num_attention_heads = int(keep_heads.sum())
        att.all_head_size = att.num_attention_heads * size
        layer.attention.output.dense = _slice(layer.attention.output.dense, cols=rows)
        layer.intermediate.dense = _slice(layer.intermediate.dense, rows=keep_units)
        layer.output.dense = _slice(layer.output.dense, cols=keep_units)
        if not structure.heads[i].any():  # the stand-in head contributes exactly nothing
            for m in (att.query, att.key, att.value):
                m.weight.zero_()
                m.bias.zero_()
            layer.attention.output.dense.weight.zero_()
        if not structure.units[i].any():  # GELU(0) = 0: a zeroed stand-in unit adds nothing
            layer.intermediate.dense.weight.zero_()
            layer.intermediate.dense.bias.zero_()
            layer.output.dense.weight.zero_()
        heads.append(att.num_attention_heads)
        units.append(int(keep_units.sum()))
    rank = None
    emb = factorised(small)
    if emb is not None:  # factorised word embeddings: their kept rank components only
        keep = structure.ranks if structure.ranks is not None else torch.ones(emb.rank, dtype=torch.bool)
        keep = keep.to(emb.left.device)
        emb.left = nn.Parameter(emb.left.detach()[:, keep].clone())
        emb.right = nn.Parameter(emb.right.detach()[keep].clone())
        rank = emb.rank
    fields = {k: v for k, v in model.config.to_dict().items()
              if k not in ("model_type", "architectures", "auto_map", "embedding_rank")}
    small.config = PrunedBertConfig(**fields, layer_heads=heads, layer_units=units, embedding_rank=rank)
    return small


def _at_least_one(keep: torch.Tensor) -> torch.Tensor:
    """``keep``, or its first item alone if it keeps nothing: a layer with no head (or no unit)
    cannot be expressed by the attention code, so a zeroed stand-in is kept (see :func:`compact`)."""
    if keep.any():
        return keep
    out = torch.zeros_like(keep)
    out[0] = True
    return out


def save(small: nn.Module, folder: Path | str, tokenizer=None) -> Path:
    """Write a compacted model as a folder ``transformers`` loads with ``trust_remote_code=True``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = small.config
    config.architectures = ["PrunedBertForTokenClassification"]
    config.auto_map = {"AutoConfig": "modeling_pruned_bert.PrunedBertConfig",
                       "AutoModelForTokenClassification": "modeling_pruned_bert.PrunedBertForTokenClassification"}
    small.save_pretrained(folder)
    shutil.copy(MODELING, folder / MODELING.name)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder
