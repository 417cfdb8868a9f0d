"""Entity-mention replacement (Dai & Adel 2020) within a language, a script and a family.

Semantics, exactly:

- A *mention* is a maximal ``B-X (I-X)*`` span of a test sentence (tags harmonised to
  PER/ORG/LOC first, so MasakhaNER DATE is not a mention).
- Every mention of every test sentence is replaced by a mention of the same type ``X`` drawn
  uniformly from the *donor pool*: the distinct surface forms (token sequences) of type ``X``
  among the donor languages' training mentions, excluding the mention's own surface form.
  The replacement's tokens are tagged ``B-X I-X ...``; every token outside mentions is kept;
  each sentence keeps its number and types of mentions.
- Donor languages, by scope: ``in_language`` the language itself; ``in_script`` the *other*
  languages with the same script (:mod:`polycompress.languages`); ``in_family`` the other
  languages of the same family. An unknown script or family, an isolate or a pseudo-family
  ("Artificial Language") shares nothing (:func:`polycompress.languages.related`): such a
  language has no in-script or in-family donors rather than invented ones. Donors come from the
  same corpus group as the language (WikiANN languages from WikiANN, MasakhaNER from MasakhaNER 1
  and 2; a corpus of one's own is a group of its own) and from languages present in the mirror,
  in the table or not.
- A scope with no donor language, or a type needed by the test set with fewer than two donor
  forms, makes that perturbed test set *unavailable*, with the reason; nothing is filled from
  elsewhere.
- Each sentence's draws come from ``numpy.random.default_rng([seed, crc32(language), scope
  index, sentence index in the test split])``: a (seed, language, scope) always gives the same
  test set, for every model, and perturbing a sample of sentences gives exactly those
  sentences of the whole perturbed split.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from datasets import Dataset

from . import languages
from .artifacts import write_json
from .corpora import load_language, source_fingerprint
from .donors import (  # noqa: F401 (re-exported)
    GROUPS, SCOPE_INDEX, SCOPES, UNSEEN, available_languages, donor_languages, group, run_donors,
)
from .settings import cache_root, data_root
from .tags import COMMON_TYPES, mentions

MIN_POOL = 2  # with one form only, a mention of that form could not be replaced


@dataclass
class Perturbed:
    """One perturbed test set, or why there is none (``dataset`` is None then)."""

    language: str
    scope: str
    seed: int
    dataset: Dataset | None
    donors: list[str]
    pool_sizes: dict[str, int]
    mentions_replaced: int = 0
    reason: str = ""
    manifest: dict = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.dataset is not None


_POOLS: dict[Path, dict[str, list[list[str]]]] = {}  # in-process copy of the disk cache


def mention_pool(code: str, root: Path | None = None) -> dict[str, list[list[str]]]:
    """Distinct training mentions of ``code`` by type, sorted; cached on disk per corpus version
    (:func:`~polycompress.corpora.source_fingerprint`) and in memory (a Latin-script language
    alone has some 25 donor languages)."""
    cache = cache_root() / "pools" / f"{code}-{source_fingerprint(code, root)}.json"
    if cache in _POOLS:
        return _POOLS[cache]
    if cache.is_file():
        _POOLS[cache] = json.loads(cache.read_text(encoding="utf-8"))
        return _POOLS[cache]
    ds, _ = load_language(code, root=root)
    names = ds["train"].features["ner_tags"].feature.names
    pool: dict[str, set[tuple[str, ...]]] = {t: set() for t in COMMON_TYPES}
    for tokens, tags in zip(ds["train"]["tokens"], ds["train"]["ner_tags"]):
        for kind, s, e in mentions([names[i] for i in tags]):
            pool[kind].add(tuple(tokens[s:e]))
    out = {kind: [list(m) for m in sorted(forms)] for kind, forms in pool.items()}
    write_json(cache, out)
    _POOLS[cache] = out
    return out


def perturb(test: Dataset, pools: dict[str, list[list[str]]], key: list[int],
            rows: np.ndarray | None = None) -> tuple[Dataset, int]:
    """Replace every mention of the sentences ``rows`` of ``test`` (all if None); returns the
    perturbed sentences, in that order, and the number of mentions replaced.

    ``key`` (seed, language hash, scope index) plus the sentence's row number seeds its draws.
    """
    names = test.features["ner_tags"].feature.names
    label = {n: i for i, n in enumerate(names)}
    rows = np.arange(len(test)) if rows is None else np.asarray(rows)
    subset = test.select(rows)
    tokens_out, tags_out, replaced = [], [], 0
    for row, tokens, tag_ids in zip(rows, subset["tokens"], subset["ner_tags"]):
        rng = np.random.default_rng([*key, int(row)])
        tags = [names[i] for i in tag_ids]
        new_tokens, new_tags, pos = [], [], 0
        for kind, s, e in mentions(tags):
            new_tokens += tokens[pos:s]
            new_tags += tag_ids[pos:s]
            pool = pools[kind]
            original = list(tokens[s:e])
            while True:  # uniform over the pool without the original form (>= MIN_POOL forms)
                choice = pool[int(rng.integers(len(pool)))]
                if choice != original:
                    break
            new_tokens += choice
            new_tags += [label[f"B-{kind}"]] + [label[f"I-{kind}"]] * (len(choice) - 1)
            pos = e
            replaced += 1
        new_tokens += tokens[pos:]
        new_tags += tag_ids[pos:]
        tokens_out.append(new_tokens)
        tags_out.append(new_tags)
    data = {"tokens": tokens_out, "ner_tags": tags_out, "language": list(subset["language"])}
    return Dataset.from_dict(data, features=test.features), replaced


def perturbed_test_sets(code: str, seed: int, test: Dataset | None = None, root: Path | None = None,
                        scopes: tuple[str, ...] = SCOPES, rows: np.ndarray | None = None,
                        seen: set[str] | None = None) -> dict[str, Perturbed]:
    """The perturbed versions of ``code``'s (harmonised) test split, one per scope.

    ``test`` is the whole test split (loaded if None); ``rows`` picks the sentences to perturb
    (all if None), and the result holds those sentences in that order. Scope :data:`UNSEEN`
    needs ``seen``, the surface forms (tokens joined by a space) of the training sample's
    mentions: its pool is the language's own minus those.
    """
    if UNSEEN in scopes and seen is None:
        raise ValueError(f"scope {UNSEEN!r} needs the training sample's mention forms (seen=)")
    if test is None:
        test = load_language(code, root=root)[0]["test"]
    available = available_languages(root)
    names = test.features["ner_tags"].feature.names
    picked = test if rows is None else test.select(rows)
    needed = sorted({k for tags in picked["ner_tags"] for k, _, _ in mentions([names[i] for i in tags])})
    out = {}
    for scope in sorted(scopes, key=lambda sc: SCOPE_INDEX.get(sc, -1)):
        if scope not in SCOPE_INDEX:
            raise ValueError(f"unknown perturbation scope {scope!r}; known: {tuple(SCOPE_INDEX)}")
        index = SCOPE_INDEX[scope]
        donors = donor_languages(code, scope, available)
        pools: dict[str, list[list[str]]] = {t: [] for t in COMMON_TYPES}
        for donor in donors:
            for kind, forms in mention_pool(donor, root).items():
                pools[kind] += forms
        pools = {k: [list(f) for f in sorted({tuple(f) for f in v})] for k, v in pools.items()}
        if scope == UNSEEN:  # only forms the model was never trained on
            pools = {k: [f for f in v if " ".join(f) not in seen] for k, v in pools.items()}
        sizes = {k: len(v) for k, v in pools.items()}
        result = Perturbed(code, scope, seed, None, donors, sizes)
        short = [k for k in needed if sizes[k] < MIN_POOL]
        if not donors:
            me = languages.get(code)
            key = "script" if scope == "in_script" else "family"
            name = {"wikiann": "WikiANN", "masakhaner": "MasakhaNER"}.get(group(me))
            if name is None:
                result.reason = f"a corpus of one's own has no other language to share its {key}"
            elif not languages.related(me, me, key):
                result.reason = f"its {key} ({getattr(me, key)}) relates it to no other language"
            else:
                result.reason = f"no other {name} language in the mirror shares its {key}"
        elif short:
            result.reason = f"fewer than {MIN_POOL} donor mentions of type {', '.join(short)}"
        else:
            key = [seed, zlib.crc32(code.encode()), index]
            result.dataset, result.mentions_replaced = perturb(test, pools, key, rows)
        result.manifest = {
            "language": code, "scope": scope, "seed": seed, "available": result.available, "reason": result.reason,
            "donor_languages": donors, "pool_sizes": sizes, "sentences": len(picked),
            "mentions_replaced": result.mentions_replaced,
        }
        out[scope] = result
    return out


def donor_words(code: str, root: Path | None = None) -> list[str]:
    """Every token a perturbed test set of ``code`` can contain beyond its own test split."""
    available = available_languages(root)
    donors = {d for scope in SCOPES for d in donor_languages(code, scope, available)}
    return [w for d in sorted(donors) for forms in mention_pool(d, root).values() for form in forms for w in form]


def export(codes: list[str], out: Path, seed: int, root: Path | None = None) -> pd.DataFrame:
    """Write the benchmark: ``out/<lang>/<scope>.conll`` (token<TAB>tag) and a manifest per set,
    plus ``out/manifest.csv`` over all languages and scopes."""
    rows = []
    for code in codes:
        test = load_language(code, root=root)[0]["test"]
        names = test.features["ner_tags"].feature.names
        for scope, p in perturbed_test_sets(code, seed, test, root).items():
            if p.available:
                lines = ["\n".join(f"{t}\t{names[g]}" for t, g in zip(toks, tags)) + "\n"
                         for toks, tags in zip(p.dataset["tokens"], p.dataset["ner_tags"])]
                path = out / code / f"{scope}.conll"
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text("\n".join(lines), encoding="utf-8")
                tmp.replace(path)
            write_json(out / code / f"{scope}.json", p.manifest)
            rows.append({**p.manifest, "donor_languages": " ".join(p.donors),
                         **{f"pool_{k}": v for k, v in p.pool_sizes.items()}})
    table = pd.DataFrame(rows).drop(columns=["pool_sizes"])
    table.to_csv(out / "manifest.csv", index=False)
    return table


def gallery(code: str, seed: int, n: int = 3, root: Path | None = None) -> pd.DataFrame:
    """The first ``n`` test sentences with mentions, original and perturbed per scope, mentions in [brackets]."""
    test = load_language(code, root=root)[0]["test"]
    names = test.features["ner_tags"].feature.names

    def show(tokens, tags) -> str:
        words, spans = list(tokens), mentions([names[i] for i in tags])
        for kind, s, e in reversed(spans):
            words[s:e] = ["[" + " ".join(words[s:e]) + f"]{kind}"]
        return " ".join(words)

    picks = [i for i, tags in enumerate(test["ner_tags"]) if any(tags)][:n]
    sets = perturbed_test_sets(code, seed, test, root)
    rows = []
    for i in picks:
        rows.append({"language": code, "sentence": i, "version": "original", "text": show(test[i]["tokens"], test[i]["ner_tags"])})
        for scope, p in sets.items():
            text = show(p.dataset[i]["tokens"], p.dataset[i]["ner_tags"]) if p.available else f"(unavailable: {p.reason})"
            rows.append({"language": code, "sentence": i, "version": scope, "text": text})
    return pd.DataFrame(rows)
