"""Bring your own corpus: a folder of CoNLL files, run under a name of one's choice.

A grid file registers it under ``corpora:``; the name becomes a language code of the grid::

    languages: [myner, yo]
    corpora:
      myner: /data/myner                  # a folder holding train, dev and test files
      other:                              # or with options:
        path: ../other                    # relative to the grid file
        language: Setswana news           # display name (default: the corpus name)
        script: Latn                      # ISO 15924 (default: unknown)
        family: Atlantic-Congo            # (default: unknown)
        token_column: 0                   # 0-based; negative counts from the end
        tag_column: -1                    # default: the last column
        separator: auto                   # auto (tab if the file has tabs, else spaces) | tab | space

and ``polycompress run GRID --corpus myner=/data/myner`` does the same from the command line
(``--languages`` then puts it in a preset's grid).

The folder holds one file per split, named ``train``, ``dev`` (or ``valid``, ``validation``) and
``test``, each with no extension or ``.txt``, ``.tsv`` or ``.conll``. Files are CoNLL-shaped:
one token per line, 2 to N columns (the same number on every line of a file), a blank line
between sentences, ``-DOCSTART-`` lines skipped and counted, tags in IOB1, IOB2 or BIOES
converted to IOB2 and counted (:func:`polycompress.conll.read_conll`). Any entity type is read;
harmonised runs keep PER, ORG and LOC and count the mentions of other types (CoNLL-2003's
MISC) mapped to O.

The run id of a run on a registered corpus includes the corpus's options (not its path) and a
hash of its files' bytes (:meth:`UserCorpus.fingerprint`): changed files are new runs, a moved
or copied folder is the same run.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .languages import UNKNOWN, Language

SPLIT_NAMES: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "validation": ("dev", "valid", "validation"),
    "test": ("test",),
}
EXTENSIONS = ("", ".txt", ".tsv", ".conll")
SEPARATORS = {"auto": None, "tab": "\t", "space": ""}  # "" splits on runs of whitespace
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
SCRIPT_PATTERN = re.compile(r"[A-Z][a-z]{3}")  # ISO 15924
OPTIONS = ("path", "language", "script", "family", "token_column", "tag_column", "separator")


class CorpusSpecError(ValueError):
    """A registration of one's own corpus that cannot work (raised before anything is read)."""


@dataclass(frozen=True)
class UserCorpus:
    """One registered corpus. ``path`` is an absolute folder; columns are 0-based."""

    name: str
    path: Path
    language: str
    script: str = UNKNOWN
    family: str = UNKNOWN
    token_column: int = 0
    tag_column: int = -1
    separator: str = "auto"

    def files(self) -> dict[str, Path]:
        """The file of each split (train, validation, test); a clear error if one is missing or
        ambiguous."""
        out = {}
        for split, stems in SPLIT_NAMES.items():
            found = [self.path / f"{stem}{ext}" for stem in stems for ext in EXTENSIONS
                     if (self.path / f"{stem}{ext}").is_file()]
            if not found:
                names = ", ".join(f"{s}{e}" for s in stems for e in EXTENSIONS)
                raise CorpusSpecError(f"{self.path}: no {split} file for corpus {self.name!r} (looked for {names})")
            if len(found) > 1:
                raise CorpusSpecError(f"{self.path}: {len(found)} {split} files for corpus {self.name!r} "
                                      f"({', '.join(p.name for p in found)}); keep one")
            out[split] = found[0]
        return out

    def fingerprint(self) -> str:
        """Hash of the split files' bytes (16 hex digits): the corpus's version in run ids and caches."""
        files = self.files()
        stat_key = tuple((split, str(p), p.stat().st_size, p.stat().st_mtime_ns) for split, p in files.items())
        if stat_key not in _FINGERPRINTS:  # hashing reads every byte: once per file version
            digest = hashlib.sha256()
            for split, p in files.items():
                digest.update(f"{split}\0{p.stat().st_size}\0".encode())
                digest.update(p.read_bytes())
            _FINGERPRINTS[stat_key] = digest.hexdigest()[:16]
        return _FINGERPRINTS[stat_key]

    def parameters(self) -> dict[str, Any]:
        """The registration as plain JSON values (a run's ``corpora`` parameter)."""
        d = asdict(self)
        del d["name"]
        d["path"] = str(self.path)
        return d

    def identity(self) -> dict[str, Any]:
        """What enters a run id: the options and the files' fingerprint, not the folder's path."""
        d = self.parameters()
        del d["path"]
        return {**d, "fingerprint": self.fingerprint()}

    def read_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`polycompress.conll.read_conll` for this corpus's files."""
        return {"separator": SEPARATORS[self.separator], "types": None, "columns": None,
                "token_column": self.token_column, "tag_column": self.tag_column,
                "docstart": True, "any_scheme": True}

    def language_record(self) -> Language:
        """The corpus as a language of the runs: what the user gave, the rest unknown."""
        given = "given in the corpus registration"
        return Language(
            code=self.name, iso639_3=UNKNOWN, name=self.language, corpus="user", script=self.script,
            family=self.family, branch=UNKNOWN, paper_train_size=None, paper_pretraining_share_pct=None,
            paper_mono_subset=False, in_mbert_pretraining=None, in_xlmr_pretraining=None, origin="user",
            name_source=given, script_source=given if self.script != UNKNOWN else "not given",
            family_source=given if self.family != UNKNOWN else "not given",
        )


_FINGERPRINTS: dict[tuple, str] = {}
_REGISTRY: dict[str, UserCorpus] = {}


def parse(name: str, value: str | Path | dict[str, Any], base: Path | None = None) -> UserCorpus:
    """A registration from a grid file or the command line: a folder, or a mapping of
    :data:`OPTIONS`. A relative path is taken from ``base`` (the grid file's folder) or the
    working directory. Checks everything that can be checked without reading the files."""
    from . import languages

    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise CorpusSpecError(f"corpus name {name!r}: use a letter then letters, digits, '_', '.' or '-' (at most 64)")
    if name in languages.table().index or languages.corpus_of(name) is not None:
        raise CorpusSpecError(f"corpus name {name!r} is already a language of the table, WikiANN or "
                              f"MasakhaNER; choose another (e.g. {name + '-own'!r})")
    spec = {"path": value} if isinstance(value, (str, Path)) else dict(value or {})
    unknown = sorted(set(spec) - set(OPTIONS))
    if unknown:
        raise CorpusSpecError(f"corpus {name!r}: unknown options {unknown}; known: {list(OPTIONS)}")
    if "path" not in spec:
        raise CorpusSpecError(f"corpus {name!r}: no path (the folder with train, dev and test files)")
    path = Path(spec["path"]).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    path = path.resolve()
    if not path.is_dir():
        raise CorpusSpecError(f"corpus {name!r}: {path} is not a folder")
    script = spec.get("script", UNKNOWN)
    if script != UNKNOWN and not SCRIPT_PATTERN.fullmatch(str(script)):
        raise CorpusSpecError(f"corpus {name!r}: script {script!r} is not an ISO 15924 code (like Latn, Cyrl, Arab)")
    separator = spec.get("separator", "auto")
    if separator not in SEPARATORS:
        raise CorpusSpecError(f"corpus {name!r}: separator {separator!r}; use one of {list(SEPARATORS)}")
    columns = {}
    for key, default in (("token_column", 0), ("tag_column", -1)):
        value_ = spec.get(key, default)
        if isinstance(value_, bool) or not isinstance(value_, int):
            raise CorpusSpecError(f"corpus {name!r}: {key} must be an integer column index, got {value_!r}")
        columns[key] = value_
    corpus = UserCorpus(name=name, path=path, language=str(spec.get("language") or name), script=str(script),
                        family=str(spec.get("family", UNKNOWN)), separator=separator, **columns)
    corpus.files()  # every split present, each once
    return corpus


def parse_cli(values: list[str] | None) -> dict[str, str]:
    """``["myner=/data/myner", ...]`` (``--corpus NAME=FOLDER``) as a ``corpora`` mapping."""
    out: dict[str, str] = {}
    for item in values or []:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise CorpusSpecError(f"--corpus {item!r}: write NAME=FOLDER")
        if name in out:
            raise CorpusSpecError(f"--corpus {name!r} given twice")
        out[name] = folder
    return out


def register(corpus: UserCorpus) -> UserCorpus:
    """Make ``corpus.name`` a language of this process (idempotent); another registration under
    the same name is an error, not a silent replacement."""
    known = _REGISTRY.get(corpus.name)
    if known is not None and known != corpus:
        raise CorpusSpecError(f"corpus name {corpus.name!r} is already registered for {known.path} "
                              f"with other options; use another name")
    _REGISTRY[corpus.name] = corpus
    return corpus


def registered(name: str) -> UserCorpus | None:
    """The corpus registered under ``name`` in this process, or None."""
    return _REGISTRY.get(name)


def unregister(name: str) -> None:
    """Forget a registration (tests)."""
    _REGISTRY.pop(name, None)
