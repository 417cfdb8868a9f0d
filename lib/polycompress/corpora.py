"""Load a language's NER corpus as a ``datasets.DatasetDict`` (train / validation / test).

Sources:

- ``"mirror"``: files under ``POLYCOMPRESS_DATA`` in one of the layouts of :data:`LAYOUTS`;
- ``"hub"``: the Hugging Face datasets the mirror copies (needs the network);
- a corpus of one's own registered under a name (:mod:`polycompress.byo`): its folder.

Any WikiANN or MasakhaNER language loads, in the table or not (:mod:`polycompress.languages`).
All go through the same validation, IOB2 repair and tag harmonisation, so a language loaded
offline and online gives the same rows. Every example has ``tokens``, ``ner_tags`` (a
``ClassLabel``) and ``language``.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

from . import byo, languages
from .conll import CorpusFormatError, ReadReport, Sentence, check_token, read_conll
from .layouts import LAYOUTS, Layout  # noqa: F401 (Layout: re-exported)
from .settings import DATA_ENV, data_root, default_source  # noqa: F401 (default_source: re-exported)
from .tags import ALL_TYPES, COMMON_TYPES, harmonise, label_names, mentions, repair_iob2

SPLITS = ("train", "validation", "test")


#: Hub dataset for each corpus: (dataset id, config for a language code). ``google/xtreme``
#: (config ``PAN-X.<code>``) holds the same PAN-X data and is tried if wikiann fails.
HUB: dict[str, tuple[str, str]] = {
    "panx": ("unimelb-nlp/wikiann", "{code}"),
    "panx-xtreme": ("google/xtreme", "PAN-X.{code}"),
    "masakhaner2": ("masakhane/masakhaner2", "{code}"),
    "masakhaner1": ("masakhane/masakhaner", "{code}"),
}

#: Where each corpus comes from, for the book and for citing.
PROVENANCE: dict[str, dict[str, str]] = {
    "panx": {
        "name": "WikiANN / PAN-X (XTREME splits)",
        "annotation": "automatic (silver), from Wikipedia links",
        "domain": "Wikipedia",
        "types": "PER ORG LOC",
        "offline copy": "XTREME preprocessing output (rohanshah13/xtreme, download/panx/)",
        "online": "unimelb-nlp/wikiann or google/xtreme (PAN-X.<lang>)",
        "license": "ODC-BY (WikiANN)",
        "cite": "pan2017crosslingual; rahimi2019massively; hu2020xtreme",
    },
    "wikiann-rahimi": {
        "name": "WikiANN, original Rahimi et al. release (English only here)",
        "annotation": "automatic (silver)",
        "domain": "Wikipedia",
        "types": "PER ORG LOC",
        "offline copy": "afshinrahimi/mmner tarballs via davidsbatista/NER-datasets",
        "online": "(same data as panx)",
        "license": "ODC-BY (WikiANN)",
        "cite": "rahimi2019massively",
    },
    "masakhaner2": {
        "name": "MasakhaNER 2.0",
        "annotation": "human",
        "domain": "news",
        "types": "PER ORG LOC DATE",
        "offline copy": "masakhane-io/masakhane-ner, MasakhaNER2.0/data/",
        "online": "masakhane/masakhaner2",
        "license": "CC BY-NC 4.0",
        "cite": "adelani2022masakhaner2",
    },
    "masakhaner1": {
        "name": "MasakhaNER 1.0 (Amharic)",
        "annotation": "human",
        "domain": "news",
        "types": "PER ORG LOC DATE",
        "offline copy": "masakhane-io/masakhane-ner, data/amh",
        "online": "masakhane/masakhaner (amh)",
        "license": "CC BY-NC 4.0",
        "cite": "adelani2021masakhaner",
    },
}


@dataclass
class LoadReport:
    """Everything loading changed, per split: nothing is repaired or dropped silently."""

    language: str
    source: str
    harmonised: bool
    files: dict[str, str] = field(default_factory=dict)
    sentences: dict[str, int] = field(default_factory=dict)
    iob2_repaired: dict[str, int] = field(default_factory=dict)
    extra_blank_lines: dict[str, int] = field(default_factory=dict)
    empty_tokens_dropped: dict[str, int] = field(default_factory=dict)
    mentions_mapped_to_o: dict[str, int] = field(default_factory=dict)
    # a corpus of one's own: each file's tagging scheme, tags changed to make it IOB2, -DOCSTART- lines
    schemes: dict[str, str] = field(default_factory=dict)
    iob2_converted: dict[str, int] = field(default_factory=dict)
    docstart_lines: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for logs: only the non-zero changes."""
        parts = []
        for name in ("iob2_repaired", "iob2_converted", "mentions_mapped_to_o", "empty_tokens_dropped",
                     "extra_blank_lines", "docstart_lines"):
            counts = {k: v for k, v in getattr(self, name).items() if v}
            if counts:
                parts.append(f"{name}={counts}")
        return f"{self.language} ({self.source}): " + (", ".join(parts) if parts else "no changes")


def features(harmonised: bool = True, extra_types: tuple[str, ...] = ()) -> Features:
    """The schema of every split: tokens, ner_tags (ClassLabel) and language. Unharmonised
    labels are MasakhaNER's, plus ``extra_types`` a corpus of one's own has (MISC...)."""
    types = COMMON_TYPES if harmonised else ALL_TYPES + tuple(t for t in extra_types if t not in ALL_TYPES)
    return Features({
        "tokens": Sequence(Value("string")),
        "ner_tags": Sequence(ClassLabel(names=label_names(types))),
        "language": Value("string"),
    })


def _to_dataset(code: str, sentences: list[Sentence], harmonised: bool, report: LoadReport, split: str,
                extra_types: tuple[str, ...] = ()) -> Dataset:
    tags_out = []
    removed = 0
    for s in sentences:
        tags = list(s.tags)
        if harmonised:
            tags, n = harmonise(tags, COMMON_TYPES)
            removed += n
        tags_out.append(tags)
    report.mentions_mapped_to_o[split] = removed
    report.sentences[split] = len(sentences)
    feats = features(harmonised, extra_types)
    label = feats["ner_tags"].feature
    return Dataset.from_dict(
        {
            "tokens": [list(s.tokens) for s in sentences],
            "ner_tags": [[label.str2int(t) for t in tags] for tags in tags_out],
            "language": [code] * len(sentences),
        },
        features=feats,
    )




def source_fingerprint(code: str, root: Path | None = None) -> str:
    """Names the data ``load_language(code, root=root)`` would read now: "hub", or the mirror
    files' paths, sizes and modification times hashed (a cache key that changes when the files do)."""
    user = byo.registered(code)
    if user is not None:  # the files' bytes: the same wherever the folder is
        return f"user-{user.fingerprint()}"
    if root is None and default_source() == "hub":
        return "hub"
    lay = LAYOUTS[languages.get(code).corpus]
    parts = []
    for name in lay.files.values():
        path = (root or data_root()) / lay.folder / code / name
        st = path.stat()
        parts.append(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def load_language(
    code: str,
    *,
    source: str = "auto",
    layout: str | None = None,
    harmonise_tags: bool = True,
    strict: bool = False,
    root: Path | None = None,
) -> tuple[DatasetDict, LoadReport]:
    """Load one language.

    Args:
        code: a code of ``data/languages.csv`` (``de``, ``yor``, ...), any other WikiANN or
            MasakhaNER language (``tsn``, ``is``), or a registered corpus of one's own (which
            ignores ``source``, ``layout`` and ``root``: it has one folder).
        source: ``"mirror"`` (files under ``POLYCOMPRESS_DATA`` or ``root``), ``"hub"``, or
            ``"auto"``: the mirror if ``root`` is given or ``POLYCOMPRESS_DATA`` is set, else the hub.
        layout: mirror layout; defaults to the language's corpus. ``"wikiann-rahimi"`` reads
            the original WikiANN release of the same PAN-X data.
        harmonise_tags: map types outside PER/ORG/LOC (MasakhaNER DATE) to O, counted.
        strict: reject IOB2 violations instead of repairing (and counting) them.

    Returns:
        The ``DatasetDict`` and a :class:`LoadReport` of every repair and mapping.
    """
    lang = languages.get(code)
    user = byo.registered(code)
    if user is not None:
        return _load_user(user, harmonise_tags, strict)
    if source == "auto":
        source = "mirror" if root is not None else default_source()
    if source == "mirror":
        name = layout or lang.corpus
        if name not in LAYOUTS:
            raise ValueError(f"unknown layout {name!r}; known: {sorted(LAYOUTS)}")
        return _load_mirror(code, LAYOUTS[name], root or data_root(), harmonise_tags, strict)
    if source == "hub":
        return _load_hub(code, lang.corpus, harmonise_tags, strict)
    raise ValueError(f"unknown source {source!r}; use 'mirror' or 'hub'")


def _load_mirror(code: str, lay: Layout, root: Path, harmonised: bool, strict: bool) -> tuple[DatasetDict, LoadReport]:
    folder = root / lay.folder / code
    if not folder.is_dir():
        raise CorpusFormatError(folder, None, f"no {lay.folder} data for language {code!r} in the mirror")
    report = LoadReport(language=code, source=f"mirror:{lay.folder}", harmonised=harmonised)
    splits = {}
    for split in SPLITS:
        path = folder / lay.files[split]
        if not path.is_file():
            raise CorpusFormatError(path, None, f"missing {split} split")
        sentences, rr = read_conll(
            path, separator=lay.separator, types=lay.types,
            token_prefix=f"{code}:" if lay.prefix_language else None, strict=strict,
        )
        _record(report, split, rr)
        splits[split] = _to_dataset(code, sentences, harmonised, report, split)
    return DatasetDict(splits), report


def _record(report: LoadReport, split: str, rr: ReadReport) -> None:
    report.files[split] = rr.path
    report.iob2_repaired[split] = rr.iob2_repaired
    report.extra_blank_lines[split] = rr.extra_blank_lines
    report.empty_tokens_dropped[split] = rr.empty_tokens_dropped
    report.schemes[split] = rr.scheme
    report.iob2_converted[split] = rr.iob2_converted
    report.docstart_lines[split] = rr.docstart_lines


def _load_user(corpus: byo.UserCorpus, harmonised: bool, strict: bool) -> tuple[DatasetDict, LoadReport]:
    """A registered corpus of one's own: its three files, any entity types; harmonised runs
    keep PER/ORG/LOC (others mapped to O, counted), which the training split must have."""
    report = LoadReport(language=corpus.name, source=f"user:{corpus.path}", harmonised=harmonised)
    read = {}
    for split, path in corpus.files().items():
        sentences, rr = read_conll(path, strict=strict, **corpus.read_options())
        _record(report, split, rr)
        read[split] = sentences
    found = sorted({t[2:] for sents in read.values() for s in sents for t in s.tags if t != "O"})
    in_train = {t[2:] for s in read["train"] for t in s.tags if t != "O"}
    if harmonised and not in_train & set(COMMON_TYPES):
        raise CorpusFormatError(report.files["train"], None,
                                f"no PER, ORG or LOC mention (types found: {', '.join(found) or 'none'}); the "
                                f"study trains and scores these three (other types are mapped to O, counted)")
    extra = tuple(t for t in found if t not in ALL_TYPES)
    splits = {split: _to_dataset(corpus.name, read[split], harmonised, report, split, extra) for split in SPLITS}
    return DatasetDict(splits), report


def _load_hub(code: str, corpus: str, harmonised: bool, strict: bool) -> tuple[DatasetDict, LoadReport]:
    from datasets import load_dataset  # only here: the mirror path never touches the network

    candidates = [HUB[corpus]] + ([HUB["panx-xtreme"]] if corpus == "panx" else [])
    errors = []
    for repo, config in candidates:
        try:
            raw = load_dataset(repo, config.format(code=code))
        except Exception as err:  # noqa: BLE001 - try the next copy, report all failures
            errors.append(f"{repo}: {err}")
            continue
        return from_hub_dataset(code, raw, f"hub:{repo}", harmonised, strict)
    raise RuntimeError(f"could not load {code!r} from the hub: " + "; ".join(errors))


def from_hub_dataset(
    code: str, raw: DatasetDict, source: str, harmonised: bool = True, strict: bool = False
) -> tuple[DatasetDict, LoadReport]:
    """Convert a hub ``DatasetDict`` (``tokens`` + ClassLabel ``ner_tags``) to this schema.

    The same checks as for files apply; "line" in errors is the example's row number.
    """
    report = LoadReport(language=code, source=source, harmonised=harmonised)
    splits = {}
    names = {"train": "train", "validation": "validation", "test": "test", "dev": "validation"}
    for split in raw:
        if split not in names:
            continue
        ds = raw[split]
        label = ds.features["ner_tags"].feature
        sentences = []
        repaired = dropped = 0
        for row, ex in enumerate(ds):
            where = (f"{source}/{split}", row + 1)
            tokens, tags = [], []
            for token, tag in zip(ex["tokens"], (label.int2str(i) for i in ex["ner_tags"])):
                try:
                    keep = check_token(token, tag, ALL_TYPES, strict)
                except ValueError as err:
                    raise CorpusFormatError(*where, str(err)) from None
                if not keep:
                    dropped += 1
                    continue
                tokens.append(token)
                tags.append(tag)
            fixed, n_bad = repair_iob2(tags)
            if n_bad and strict:
                raise CorpusFormatError(*where, "IOB2 violation")
            repaired += n_bad
            sentences.append(Sentence(tuple(tokens), tuple(fixed), row + 1))
        target = names[split]
        report.files[target] = f"{source}/{split}"
        report.iob2_repaired[target] = repaired
        report.extra_blank_lines[target] = 0
        report.empty_tokens_dropped[target] = dropped
        splits[target] = _to_dataset(code, sentences, harmonised, report, target)
    missing = [s for s in SPLITS if s not in splits]
    if missing:
        raise CorpusFormatError(source, None, f"missing split(s) {missing}")
    return DatasetDict({s: splits[s] for s in SPLITS}), report


def subsample(ds: Dataset, n: int, seed: int) -> Dataset:
    """``n`` sentences drawn without replacement, deterministically, in corpus order.

    Draws are nested: with one seed, the 100-sentence sample is a subset of the 1,000-sentence
    sample (both are prefixes of the same permutation), so bucket comparisons are paired.
    """
    return ds.select(subsample_indices(len(ds), n, seed))


def subsample_indices(total: int, n: int, seed: int) -> np.ndarray:
    """The sorted row indices :func:`subsample` keeps (to select the same rows elsewhere)."""
    if n > total:
        raise ValueError(f"cannot draw {n} sentences from a split of {total}")
    return np.sort(np.random.default_rng(seed).permutation(total)[:n])


def corpus_words(code: str) -> list[str]:
    """Every token of every split of ``code`` (with repeats), from the default source."""
    ds, _ = load_language(code)
    return [w for split in ds.values() for tokens in split["tokens"] for w in tokens]


def mention_counts(ds: Dataset) -> Counter:
    """Entity mentions per type in one split."""
    names = ds.features["ner_tags"].feature.names
    counts: Counter = Counter()
    for tags in ds["ner_tags"]:
        counts.update(kind for kind, _, _ in mentions([names[i] for i in tags]))
    return counts
