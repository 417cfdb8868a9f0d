"""Which languages give their mentions to a language's perturbed test sets (see
:mod:`polycompress.perturb`), from the languages the data source holds. Apart from the perturbation
itself so that run ids (which name the donors) need no corpus library."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from . import languages
from .layouts import LAYOUTS
from .settings import SettingError, data_root, default_source

#: the benchmark's three perturbation scopes: replacements from the language itself, from
#: languages of its script, from languages of its family
SCOPES = ("in_language", "in_script", "in_family")
#: a test set beyond the benchmark's three, made only on request (RunConfig.unseen_mentions):
#: in-language replacements drawn only from mentions the model never saw in its training sample,
#: which tests the paper's explanation (footnote 5) that dense models overfit to typical entities
UNSEEN = "in_language_unseen"
#: each scope's index in the seed of its draws (the benchmark's three keep theirs)
SCOPE_INDEX = {scope: i for i, scope in enumerate((*SCOPES, UNSEEN))}
#: corpora whose languages may give each other mentions
GROUPS = {"panx": "wikiann", "masakhaner2": "masakhaner", "masakhaner1": "masakhaner"}


def available_languages(root: Path | None = None) -> list[str]:
    """The possible donors: languages with a folder in the mirror (table languages in table
    order, then WikiANN and MasakhaNER languages beyond the table, sorted), or, reading from the
    hub (no mirror set), every language of the table (pooling all 196 corpus languages from the
    hub for every perturbed set would be impractical)."""
    if root is None and default_source() == "hub":
        return languages.codes()
    root = root or data_root()
    found = []
    for code in languages.codes():
        layout = LAYOUTS[languages.get(code).corpus]
        if (root / layout.folder / code).is_dir():
            found.append(code)
    table = set(languages.codes())
    beyond = set()
    for corpus in languages.CORPORA:
        folder = root / LAYOUTS[corpus].folder
        for sub in folder.iterdir() if folder.is_dir() else []:
            if sub.is_dir() and sub.name not in table and languages.corpus_of(sub.name) == corpus:
                beyond.add(sub.name)
    return found + sorted(beyond)


@lru_cache(maxsize=None)
def _donors(source: tuple[str, str], code: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(scope, donors) of ``code``'s in-script and in-family sets, given ``source`` (what
    :func:`run_donors` names the data source by): cached, a grid asks once per run."""
    available = [] if source[0] == "missing" else _available(source)
    return tuple((s, tuple(donor_languages(code, s, available))) for s in SCOPES if s != "in_language")


@lru_cache(maxsize=None)
def _available(source: tuple[str, str]) -> list[str]:
    return available_languages()


def run_donors(codes: tuple[str, ...] | list[str]) -> dict[str, dict[str, list[str]]]:
    """Donor languages of the in-script and in-family test sets of each of ``codes`` (the
    in-language sets' donor is the language itself), given the languages the data source holds
    now: code -> scope -> codes. A run's id includes them (RunConfig.canonical), so a mirror with
    other languages makes other runs rather than mixing perturbed sets under one id."""
    try:
        source = (default_source(), str(data_root()) if default_source() == "mirror" else "")
    except SettingError:  # no mirror where one is named: no run can load data, ids are only planned
        source = ("missing", "")
    return {c: {s: list(d) for s, d in _donors(source, c)} for c in codes}


def group(lang: languages.Language) -> str:
    """The corpus group donors must share: "wikiann", "masakhaner", or a corpus of one's own."""
    return GROUPS.get(lang.corpus, f"user:{lang.code}")


def donor_languages(code: str, scope: str, available: list[str]) -> list[str]:
    """Donor languages of ``code`` for ``scope`` among ``available`` (see the module docstring)."""
    if scope not in SCOPE_INDEX:
        raise ValueError(f"unknown perturbation scope {scope!r}; known: {tuple(SCOPE_INDEX)}")
    me = languages.get(code)
    if scope in ("in_language", UNSEEN):
        return [code]
    key = "script" if scope == "in_script" else "family"
    return sorted(
        c for c in available
        if c != code and group(languages.get(c)) == group(me) and languages.related(languages.get(c), me, key)
    )


