"""polycompress: what compressing a multilingual encoder does to each language."""

__version__ = "0.1.0"
