"""Where things live: the corpus mirror, the model cache and the repository's own data.

Every path the library reads or writes is decided here, from environment variables, so
that CI, a laptop and a cluster differ only in their environment:

- ``POLYCOMPRESS_DATA``: a folder laid out like ``shared/data`` (``panx/``, ``masakhaner2/``,
  ...). Needed only for offline loading; online users load from the hub instead.
- ``POLYCOMPRESS_CACHE``: converted models and other derived artefacts (default
  ``$XDG_CACHE_HOME/polycompress`` or ``~/.cache/polycompress``).
- ``POLYCOMPRESS_LANGUAGES``: another copy of the curated language table (default the
  repository's ``data/languages.csv``); tests use it to run with a table that lacks a language.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "POLYCOMPRESS_DATA"
CACHE_ENV = "POLYCOMPRESS_CACHE"
LANGUAGES_ENV = "POLYCOMPRESS_LANGUAGES"


class SettingError(RuntimeError):
    """A required setting is missing or points nowhere."""


def data_root() -> Path:
    """The offline corpus mirror named by ``POLYCOMPRESS_DATA``."""
    value = os.environ.get(DATA_ENV)
    if not value:
        raise SettingError(
            f"{DATA_ENV} is not set: point it at a corpus mirror laid out like shared/data "
            f"(e.g. export {DATA_ENV}=../shared/data), or load from the hub with source='hub'."
        )
    root = Path(value).expanduser().resolve()
    if not root.is_dir():
        raise SettingError(f"{DATA_ENV}={value!r} is not a folder")
    return root


def cache_root() -> Path:
    """Folder for converted models and other derived, re-creatable files (created on demand)."""
    value = os.environ.get(CACHE_ENV)
    if value:
        root = Path(value).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg) if xdg else Path.home() / ".cache") / "polycompress"
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def repo_data_dir() -> Path:
    """The repository's ``data/`` folder (language metadata, published reference tables).

    The package is installed editable from the repository (see README), so ``data/`` sits two
    levels above this package's folder.
    """
    here = Path(__file__).resolve().parent
    candidate = here.parents[1] / "data"
    if not (candidate / "languages.csv").is_file():
        raise SettingError(
            f"cannot find the project's data/languages.csv next to {here}; "
            "install polycompress editable from its repository (pip install -e .)"
        )
    return candidate


def languages_table_path() -> Path:
    """The curated language table: ``$POLYCOMPRESS_LANGUAGES`` if set, else ``data/languages.csv``."""
    value = os.environ.get(LANGUAGES_ENV)
    if not value:
        return repo_data_dir() / "languages.csv"
    path = Path(value).expanduser().resolve()
    if not path.is_file():
        raise SettingError(f"{LANGUAGES_ENV}={value!r} is not a file")
    return path


def default_source() -> str:
    """"mirror" when ``POLYCOMPRESS_DATA`` names one, else "hub": where data comes from is a
    property of the machine (the mirror copies the hub), not a parameter of a run."""
    return "mirror" if os.environ.get(DATA_ENV) else "hub"
