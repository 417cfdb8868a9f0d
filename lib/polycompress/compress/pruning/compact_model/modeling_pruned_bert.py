"""A BERT token classifier whose layers have their own numbers of heads and FFN units.

Written into every structurally pruned model folder by ``polycompress`` so that the folder loads
with ``transformers`` alone::

    AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=True)

``config.layer_heads[i]`` and ``config.layer_units[i]`` give layer ``i``'s kept heads and FFN
units; the head size stays ``hidden_size // num_attention_heads`` of the original model.
"""

from torch import nn
from transformers import BertConfig, BertForTokenClassification


class PrunedBertConfig(BertConfig):
    model_type = "pruned_bert"

    def __init__(self, layer_heads=None, layer_units=None, **kwargs):
        super().__init__(**kwargs)
        self.layer_heads = list(layer_heads or [self.num_attention_heads] * self.num_hidden_layers)
        self.layer_units = list(layer_units or [self.intermediate_size] * self.num_hidden_layers)


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
        self.post_init()
