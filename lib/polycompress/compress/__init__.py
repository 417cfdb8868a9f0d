"""Compression of a fine-tuned encoder, three families of one concern.

- :mod:`.pruning`: removing weights (IMP), heads and FFN units (gradient importance, L0 gates),
  during fine-tuning, with the masks and the physically smaller models they give.
- :mod:`.quantization`: storing and computing a trained model's linear layers in 8 bits
  (dynamic int8, LLM.int8), after fine-tuning.

Each family is a module of its own; a run (:mod:`polycompress.experiment`) applies them, and a
grid (:mod:`polycompress.grid`) takes them as axes of one product.
"""
