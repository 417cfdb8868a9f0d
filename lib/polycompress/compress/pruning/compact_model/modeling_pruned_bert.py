"""A BERT token classifier whose layers have their own numbers of heads and FFN units.

Written into every structurally pruned model folder by ``polycompress`` so that the folder loads
with ``transformers`` alone::

    AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=True)

``config.layer_heads[i]`` and ``config.layer_units[i]`` give layer ``i``'s kept heads and FFN
units; the head size stays ``hidden_size // num_attention_heads`` of the original model.
``config.embedding_rank``, if set, makes the word embeddings a product of that rank (their
kept rank components, Li et al. 2022 Eq. 3).
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertForTokenClassification


class PrunedBertConfig(BertConfig):
    model_type = "pruned_bert"

    def __init__(self, layer_heads=None, layer_units=None, embedding_rank=None, **kwargs):
        super().__init__(**kwargs)
        self.layer_heads = list(layer_heads or [self.num_attention_heads] * self.num_hidden_layers)
        self.layer_units = list(layer_units or [self.intermediate_size] * self.num_hidden_layers)
        self.embedding_rank = embedding_rank  # None: a plain word-embedding matrix


class FactorisedEmbedding(nn.Module):
    """Word embeddings as ``left @ right`` (vocabulary x rank, rank x hidden)."""

    def __init__(self, vocab_size, rank, hidden_size, padding_idx=None):
        super().__init__()
        self.left = nn.Parameter(torch.zeros(vocab_size, rank))
        self.right = nn.Parameter(torch.zeros(rank, hidden_size))
        self.padding_idx = padding_idx

    @property
    def weight(self):
        return self.left @ self.right

    def forward(self, ids):
        return F.embedding(ids, self.left, self.padding_idx) @ self.right


class PrunedBertForTokenClassification(BertForTokenClassification):
    config_class = PrunedBertConfig

    def __init__(self, config):
        super().__init__(config)
        d = config.hidden_size
        size = d // config.num_attention_heads
        for layer, heads, units in zip(self.bert.encoder.layer, config.layer_heads, config.layer_units):
            att = layer.attention.self
            att.num_attention_heads, att.all_head_size = heads, heads * size
            att.query, att.key, att.value = (nn.Linear(d, heads * size) for _ in range(3))
            layer.attention.output.dense = nn.Linear(heads * size, d)
            layer.intermediate.dense = nn.Linear(d, units)
            layer.output.dense = nn.Linear(units, d)
        if config.embedding_rank is not None:
            self.set_input_embeddings(FactorisedEmbedding(config.vocab_size, config.embedding_rank, d, config.pad_token_id))
        self.post_init()
