"""How each corpus lays out its files in the offline mirror (kept apart from :mod:`polycompress.corpora`
so that planning and run ids can list the mirror without importing the corpus libraries)."""

from __future__ import annotations

from dataclasses import dataclass

from .tags import ALL_TYPES, COMMON_TYPES


@dataclass(frozen=True)
class Layout:
    """How one corpus lays out its files in the mirror."""

    folder: str  # under the mirror root, then one folder per language
    files: dict[str, str]  # split -> file name
    separator: str
    types: tuple[str, ...]
    prefix_language: bool = False  # tokens carry "<code>:" (original WikiANN release)


LAYOUTS: dict[str, Layout] = {
    "panx": Layout("panx", {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}, "\t", COMMON_TYPES),
    "wikiann-rahimi": Layout(
        "wikiann-rahimi", {"train": "train", "validation": "dev", "test": "test"}, "\t", COMMON_TYPES,
        prefix_language=True,
    ),
    "masakhaner2": Layout("masakhaner2", {"train": "train.txt", "validation": "dev.txt", "test": "test.txt"}, " ", ALL_TYPES),
    "masakhaner1": Layout("masakhaner1", {"train": "train.txt", "validation": "dev.txt", "test": "test.txt"}, " ", ALL_TYPES),
}
