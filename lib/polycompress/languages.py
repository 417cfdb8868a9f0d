"""The languages the project knows: the curated table, and any WikiANN or MasakhaNER language.

**The curated table** (``data/languages.csv``; ``POLYCOMPRESS_LANGUAGES`` names another copy).
Each row is a language *in a corpus*: PAN-X Swahili (``sw``) and MasakhaNER Swahili (``swa``)
are two rows sharing ``iso639_3``. Codes are ISO 639-1 for PAN-X (as XTREME names its
folders) and ISO 639-3 for MasakhaNER (as its release does), so they never collide. For what it
holds (script, family, branch, the paper's sizes and pre-training shares) the table is the source.

**Any other language of the corpora.** WikiANN has 176 languages on the hub and MasakhaNER 2.0
twenty; a code that is one of their configurations (:data:`WIKIANN_CODES`,
:data:`MASAKHANER2_CODES`, :data:`MASAKHANER1_CODES`, copied from the datasets' loading scripts)
loads whether or not the table lists it, with facts from maintained sources, each named in the
language's ``*_source`` fields:

- *Name and likely script*: the Unicode CLDR and IANA data shipped by ``langcodes`` with
  ``language-data``. Chosen over ``pycountry`` and ``python-iso639``, which know ISO 639 names
  but no scripts, because ``Language.maximize()`` gives CLDR's likely script for a language.
  Its fallback for a language CLDR's likely-subtags table lacks is English's (``Latn``), which
  would be invented: the script is taken only where that table has the language itself, and is
  "unknown" otherwise (``mwl``, ``cbk``, ``eml``...). A likely script is the language's, not the
  corpus's: Min Nan Wikipedia (``zh-min-nan``) writes Latin script where CLDR says ``Hans``.
- *Wikipedia's own codes*: WikiANN names its languages by Wikipedia subdomain, and a few are not
  ISO 639 (``als`` is Alemannic on Wikipedia, Tosk Albanian in ISO 639-3; ``bat-smg``,
  ``zh-yue``...). :data:`WIKIMEDIA_CODES` maps them to the tag Wikimedia itself uses for them
  (meta.wikimedia.org, "Special language codes" and "Template:BCP47").
- *Family*: the top-level family of the Glottolog classification that URIEL+ ships in the
  ``urielplus`` package (its ``uriel_glottocode_map.csv`` maps ISO 639-3 codes
  to glottocodes, its ``lang_fam_geo.csv`` gives each glottocode's Glottolog lineage, whose first
  element is the top-level family; CC BY-SA 4.0, derived from Glottolog by Hammarström, Forkel,
  Haspelmath and Bank; the package does not state which Glottolog release). Read from the
  installed wheel, no network. A language with an empty lineage is an isolate (family "Language
  isolate", which relates it to no other); a macrolanguage URIEL+ has no glottocode for
  (``ara``, ``msa``, ``zho``, ``swa``...) gets the family its members share, when every member
  URIEL+ knows has the same one (members from the IANA registry's "Macrolanguage" fields, as
  ``langcodes`` ships them; members filed under the pseudo-family "Bookkeeping" do not vote).
  A code URIEL+ does not know has family "unknown".
- Branch, paper sizes and pre-training membership: unknown (``"unknown"`` / None).

What no source knows is :data:`UNKNOWN`, never guessed; :func:`related` never counts two
languages as sharing an unknown script or family (or an isolate or a Glottolog pseudo-family
such as "Artificial Language"), so nothing groups by one as if it were a script or a family.

Table families are Ethnologue's names (li2022), derived ones Glottolog's (via URIEL+). Equal names
(Indo-European, Afro-Asiatic, Austronesian...) are taken as the same family; different names
stay different groups (Ethnologue's Niger-Congo is not Glottolog's Atlantic-Congo), so a
language beyond the table can get fewer in-family donors than Ethnologue would give it, never
invented ones. ``family_source`` says which classification a family comes from.

**Corpora of one's own** (:mod:`polycompress.byo`) register a name that :func:`get` then finds;
their script and family are unknown unless the user gives them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from .settings import languages_table_path

CORPORA = ("panx", "masakhaner2", "masakhaner1")
UNKNOWN = "unknown"

REQUIRED_COLUMNS = (
    "code", "iso639_3", "name", "corpus", "script", "family", "branch",
    "paper_train_size", "paper_pretraining_share_pct", "paper_mono_subset",
    "in_mbert_pretraining", "in_xlmr_pretraining",
    "script_source", "family_source", "branch_source", "paper_source", "pretraining_source",
)

#: WikiANN's 176 languages (Rahimi et al. 2019 splits): the configurations of the hub dataset
#: ``unimelb-nlp/wikiann``, as listed in huggingface/datasets ``datasets/wikiann/wikiann.py``.
#: Wikipedia subdomain codes: ISO 639-1 where one exists, else ISO 639-3 or Wikipedia's own.
WIKIANN_CODES: tuple[str, ...] = tuple("""
ace af als am an ang ar arc arz as ast ay az ba bar bat-smg be be-x-old bg bh bn bo br bs ca
cbk-zam cdo ce ceb ckb co crh cs csb cv cy da de diq dv el eml en eo es et eu ext fa fi fiu-vro
fo fr frr fur fy ga gan gd gl gn gu hak he hi hr hsb hu hy ia id ig ilo io is it ja jbo jv ka kk
km kn ko ksh ku ky la lb li lij lmo ln lt lv map-bms mg mhr mi min mk ml mn mr ms mt mwl my mzn
nap nds ne nl nn no nov oc or os pa pdc pl pms pnb ps pt qu rm ro ru rw sa sah scn sco sd sh si
simple sk sl so sq sr su sv sw szl ta te tg th tk tl tr tt ug uk ur uz vec vep vi vls vo wa war
wuu xmf yi yo zea zh zh-classical zh-min-nan zh-yue
""".split())
#: MasakhaNER 2.0's 20 languages: configurations of ``masakhane/masakhaner2`` (the folders of
#: masakhane-io/masakhane-ner ``MasakhaNER2.0/data/``), ISO 639-3.
MASAKHANER2_CODES: tuple[str, ...] = (
    "bam", "bbj", "ewe", "fon", "hau", "ibo", "kin", "lug", "luo", "mos",
    "nya", "pcm", "sna", "swa", "tsn", "twi", "wol", "xho", "yor", "zul",
)
#: MasakhaNER 1.0's 10 languages (``masakhane/masakhaner``); all but Amharic are also in 2.0,
#: which is where they load from.
MASAKHANER1_CODES: tuple[str, ...] = ("amh", "hau", "ibo", "kin", "lug", "luo", "pcm", "swa", "wol", "yor")


class Wikimedia(NamedTuple):
    """What a Wikipedia code that is not (or not rightly) ISO 639 stands for."""

    tag: str  # the BCP 47 tag Wikimedia uses for the wiki's language
    name: str  # the wiki's language, as Wikimedia names it
    iso639_3: str  # ISO 639-3 code of that language (of the language it is a variety of)


#: Wikipedia codes of WikiANN whose ISO 639 reading is wrong or absent, as Wikimedia resolves
#: them (meta.wikimedia.org "Special language codes"; "bh" per "Template:BCP47").
WIKIMEDIA_CODES: dict[str, Wikimedia] = {
    "als": Wikimedia("gsw", "Alemannic", "gsw"),  # ISO "als" is Tosk Albanian
    "bat-smg": Wikimedia("sgs", "Samogitian", "sgs"),
    "be-x-old": Wikimedia("be-tarask", "Belarusian (Taraškievica)", "bel"),
    "bh": Wikimedia("bho", "Bhojpuri", "bho"),  # ISO "bh" is the Bihari group
    "cbk-zam": Wikimedia("cbk", "Chavacano", "cbk"),
    "fiu-vro": Wikimedia("vro", "Võro", "vro"),  # "fiu" alone reads as Finno-Ugrian languages
    "map-bms": Wikimedia("jv-x-bms", "Banyumasan", "jav"),  # a Javanese variety without its own code
    "sh": Wikimedia("sh", "Serbo-Croatian", "hbs"),  # CLDR reads "sh" as Serbian in Latin script
    "simple": Wikimedia("en", "Simple English", "eng"),
    "tl": Wikimedia("tl", "Tagalog", "tgl"),  # CLDR reads "tl" as Filipino
    "zh-classical": Wikimedia("lzh", "Classical Chinese", "lzh"),
    "zh-min-nan": Wikimedia("nan", "Min Nan", "nan"),
    "zh-yue": Wikimedia("yue", "Cantonese", "yue"),
}

#: Family labels that relate no two languages: none known, an isolate (no relatives by
#: definition), and Glottolog's pseudo-families, which group languages by kind, not descent.
NOT_A_FAMILY = frozenset({
    UNKNOWN, "Language isolate", "Artificial Language", "Sign Language", "Mixed Language", "Pidgin",
    "Speech Register", "Unclassifiable", "Bookkeeping", "Unattested",
})

CLDR_SOURCE = "Unicode CLDR via langcodes {version}"
URIEL_SOURCE = "Glottolog lineage in URIEL+ (urielplus {version}, lang_fam_geo.csv)"
ISOLATE = "Language isolate"


class UnknownLanguageError(KeyError):
    """A code that is neither in the table, nor a WikiANN or MasakhaNER language, nor registered."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


@dataclass(frozen=True)
class Language:
    """One language in one corpus. ``paper_*`` are None for languages not in the paper;
    ``in_*_pretraining`` None where no source says; script and family :data:`UNKNOWN` likewise.

    ``origin``: "table" (``data/languages.csv``), "derived" (a WikiANN or MasakhaNER language
    beyond the table, facts from CLDR and URIEL+/Glottolog) or "user" (a registered corpus of one's own).
    """

    code: str
    iso639_3: str
    name: str
    corpus: str
    script: str
    family: str
    branch: str
    paper_train_size: int | None
    paper_pretraining_share_pct: float | None
    paper_mono_subset: bool
    in_mbert_pretraining: bool | None
    in_xlmr_pretraining: bool | None
    origin: str = "table"
    name_source: str = "data/languages.csv"
    script_source: str = ""
    family_source: str = ""


@lru_cache(maxsize=4)
def _read_table(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    for col in ("code", "iso639_3", "name", "corpus", "script", "family", "branch"):
        empty = df.index[df[col].str.strip().isin(["", "Missing"])].tolist()
        if empty:
            # +2: one for the header line, one because CSV lines count from 1
            raise ValueError(f"{path}, line {empty[0] + 2}: empty or 'Missing' {col}")
    dup = df["code"][df["code"].duplicated()].tolist()
    if dup:
        raise ValueError(f"{path}: duplicated codes {dup}")
    bad = sorted(set(df["corpus"]) - set(CORPORA))
    if bad:
        raise ValueError(f"{path}: unknown corpora {bad}; known: {CORPORA}")
    df["paper_train_size"] = pd.to_numeric(df["paper_train_size"]).astype("Int64")
    df["paper_pretraining_share_pct"] = pd.to_numeric(df["paper_pretraining_share_pct"])
    for col in ("paper_mono_subset", "in_mbert_pretraining", "in_xlmr_pretraining"):
        df[col] = df[col].map({"True": True, "False": False, "": False}).astype(bool)
    return df.set_index("code", drop=False)


def table() -> pd.DataFrame:
    """The curated table, validated, indexed by code (one row per language and corpus)."""
    return _read_table(languages_table_path())


def corpus_of(code: str) -> str | None:
    """The corpus a code that the table may lack belongs to: "panx" for WikiANN's languages,
    "masakhaner2" (or "masakhaner1", Amharic) for MasakhaNER's; None for any other code."""
    if code in WIKIANN_CODES:
        return "panx"
    if code in MASAKHANER2_CODES:
        return "masakhaner2"
    if code in MASAKHANER1_CODES:
        return "masakhaner1"
    return None


def get(code: str) -> Language:
    """The language with this code: the table's row, a registered corpus of one's own, or a
    WikiANN or MasakhaNER language beyond the table; a clear error naming the options otherwise."""
    df = table()
    if code in df.index:
        return _from_row(df.loc[code])
    from . import byo  # here: byo reads files with conll, which needs nothing from this module

    user = byo.registered(code)
    if user is not None:
        return user.language_record()
    if corpus_of(code) is not None:
        return derived(code)
    hint = _did_you_mean(code)
    raise UnknownLanguageError(
        f"unknown language code {code!r}: not in the table ({len(df)} languages: {' '.join(df.index)}; "
        f"{languages_table_path()}), nor one of WikiANN's {len(WIKIANN_CODES)} or MasakhaNER's "
        f"{len(MASAKHANER2_CODES)} languages, nor a registered corpus of your own "
        f"(a grid's 'corpora:' key or --corpus NAME=FOLDER){hint}"
    )


def _from_row(row: pd.Series) -> Language:
    size = row["paper_train_size"]
    share = row["paper_pretraining_share_pct"]
    return Language(
        code=row["code"], iso639_3=row["iso639_3"], name=row["name"], corpus=row["corpus"],
        script=row["script"], family=row["family"], branch=row["branch"],
        paper_train_size=None if pd.isna(size) else int(size),
        paper_pretraining_share_pct=None if pd.isna(share) else float(share),
        paper_mono_subset=bool(row["paper_mono_subset"]),
        in_mbert_pretraining=bool(row["in_mbert_pretraining"]),
        in_xlmr_pretraining=bool(row["in_xlmr_pretraining"]),
        origin="table", name_source=str(languages_table_path().name),
        script_source=row["script_source"], family_source=row["family_source"],
    )


def _did_you_mean(code: str) -> str:
    """", did you mean 'is'?" when ``code`` names a corpus language by another ISO code ('isl')."""
    import langcodes

    try:
        alpha3 = langcodes.Language.get(code).to_alpha3()
    except (LookupError, ValueError):
        return ""
    for other in (*WIKIANN_CODES, *MASAKHANER2_CODES):
        if other == code or other in WIKIMEDIA_CODES:
            continue
        try:
            if langcodes.Language.get(other).to_alpha3() == alpha3:
                return f"; did you mean {other!r}, the corpora's code for that language?"
        except (LookupError, ValueError):
            continue
    return ""


class _Cldr(NamedTuple):
    name: str | None
    script: str | None
    iso639_3: str | None


def _cldr(tag: str) -> _Cldr:
    """Name, likely script and ISO 639-3 code that CLDR (via langcodes) gives a tag; None for
    each it does not know. The script is CLDR's likely script only where CLDR's likely-subtags
    table has the language itself: ``maximize()`` would otherwise return English's Latn."""
    import langcodes
    from langcodes.data_dicts import LIKELY_SUBTAGS

    try:
        lang = langcodes.Language.get(tag)
    except (LookupError, ValueError):
        return _Cldr(None, None, None)
    name = lang.display_name()
    if name.startswith("Unknown language"):
        name = None
    script = lang.script or (lang.maximize().script if lang.language in LIKELY_SUBTAGS else None)
    try:
        alpha3 = lang.to_alpha3()
    except LookupError:
        alpha3 = None
    return _Cldr(name, script, alpha3)


class UrielFamily(NamedTuple):
    """The family URIEL+ gives an ISO 639-3 code."""

    iso639_3: str
    glottocode: str  # the languoid's glottocode (empty for a macrolanguage)
    glottolog_name: str  # its name in URIEL+'s Glottolog table (empty for a macrolanguage)
    family: str  # first element of the Glottolog lineage; "Language isolate" for an empty lineage
    via: str  # how it was found (the languoid itself, or a macrolanguage's members)


@lru_cache(maxsize=1)
def _uriel_tables() -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """URIEL+'s ISO 639-3 -> glottocode map and glottocode -> (name, top-level family), read
    once from the files the ``urielplus`` wheel ships."""
    import csv
    from importlib.resources import files

    folder = files("urielplus") / "database" / "urielplus_csvs"
    with (folder / "uriel_glottocode_map.csv").open(encoding="utf-8", newline="") as f:
        iso_to_glotto = {r["iso_code"]: r["glottocode"] for r in csv.DictReader(f) if r["glottocode"]}
    with (folder / "lang_fam_geo.csv").open(encoding="utf-8", newline="") as f:
        by_glotto = {r["language_id"]: (r["language_name"], r["lineage"].split(",")[0].strip() or ISOLATE)
                     for r in csv.DictReader(f)}
    return iso_to_glotto, by_glotto


@lru_cache(maxsize=None)
def uriel_family(iso639_3: str) -> UrielFamily | None:
    """The top-level Glottolog family URIEL+ gives an ISO 639-3 code (module docstring), or None."""
    from langcodes.data_dicts import MACROLANGUAGES

    iso_to_glotto, by_glotto = _uriel_tables()

    def languoid(iso: str) -> tuple[str, str, str] | None:
        glotto = iso_to_glotto.get(iso)
        if glotto and glotto in by_glotto:
            return (glotto, *by_glotto[glotto])
        return None

    found = languoid(iso639_3)
    if found:
        glotto, name, family = found
        return UrielFamily(iso639_3, glotto, name, family, f"languoid {glotto}")
    # langcodes keys members by ISO 639-3 and names the macrolanguage by its shortest code
    members = sorted(m for m, parent in MACROLANGUAGES.items() if _cldr(parent).iso639_3 == iso639_3)
    known = [f for f in map(languoid, members) if f]
    voters = [f for f in known if f[2] != "Bookkeeping"]
    families = {f[2] for f in voters}
    if voters and len(families) == 1:
        bookkeeping = len(known) - len(voters)
        note = f" ({bookkeeping} more filed under Bookkeeping)" if bookkeeping else ""
        return UrielFamily(iso639_3, "", "", families.pop(),
                           f"macrolanguage: {len(voters)} of its {len(members)} members known{note}, all one family")
    return None


def _uriel_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("urielplus")
    except PackageNotFoundError:  # pragma: no cover - declared dependency
        return "(version unknown)"


def _langcodes_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{version('langcodes')} / language-data {version('language-data')}"
    except PackageNotFoundError:  # pragma: no cover - declared dependencies
        return "(version unknown)"


@lru_cache(maxsize=None)
def derived(code: str) -> Language:
    """A WikiANN or MasakhaNER language with facts from CLDR and URIEL+/Glottolog (module docstring);
    the table is not consulted (:func:`get` does that first)."""
    corpus = corpus_of(code)
    if corpus is None:
        raise UnknownLanguageError(f"{code!r} is not a WikiANN or MasakhaNER language")
    cldr_source = CLDR_SOURCE.format(version=_langcodes_version())
    wiki = WIKIMEDIA_CODES.get(code)
    facts = _cldr(wiki.tag if wiki else code)
    iso = wiki.iso639_3 if wiki else facts.iso639_3
    uriel_source = URIEL_SOURCE.format(version=_uriel_version())
    glotto = uriel_family(iso) if iso else None
    if wiki:
        name, name_source = wiki.name, "Wikimedia special language codes"
    elif facts.name:
        name, name_source = facts.name, cldr_source
    elif glotto and glotto.glottolog_name:
        name, name_source = glotto.glottolog_name, uriel_source
    else:
        name, name_source = UNKNOWN, "no source knows this code"
    if glotto:
        family = glotto.family
        family_source = f"{uriel_source}: {glotto.via}"
    else:
        family, family_source = UNKNOWN, f"not in {uriel_source}"
    return Language(
        code=code, iso639_3=iso or UNKNOWN, name=name, corpus=corpus,
        script=facts.script or UNKNOWN, family=family, branch=UNKNOWN,
        paper_train_size=None, paper_pretraining_share_pct=None, paper_mono_subset=False,
        in_mbert_pretraining=None, in_xlmr_pretraining=None, origin="derived", name_source=name_source,
        script_source=f"{cldr_source}, likely script" if facts.script else f"not in CLDR likely subtags ({cldr_source})",
        family_source=family_source,
    )


def related(a: Language, b: Language, key: str) -> bool:
    """Whether ``a`` and ``b`` share a known ``key`` ("script" or "family"): an unknown value,
    or a family label in :data:`NOT_A_FAMILY`, relates a language to none other."""
    if key not in ("script", "family"):
        raise ValueError(f"key must be 'script' or 'family', not {key!r}")
    va, vb = getattr(a, key), getattr(b, key)
    excluded = NOT_A_FAMILY if key == "family" else {UNKNOWN}
    return va == vb and va not in excluded


FACT_COLUMNS = ["code", "name", "corpus", "script", "family", "paper_train_size", "origin",
                "script_source", "family_source"]


def facts(codes: list[str]) -> pd.DataFrame:
    """One row of facts per code (:data:`FACT_COLUMNS`), for any code a results table holds.

    A corpus of one's own that this process has not registered (the book reads results in
    another process than the one that ran them) gets its code as name, corpus "user" and
    unknown script and family, so it stays in the tables as its own group.
    """
    rows = []
    for code in dict.fromkeys(codes):
        try:
            lang = get(code)
        except UnknownLanguageError:
            rows.append({"code": code, "name": code, "corpus": "user", "script": UNKNOWN, "family": UNKNOWN,
                         "paper_train_size": None, "origin": "user",
                         "script_source": "corpus not registered in this process", "family_source": ""})
            continue
        rows.append({c: getattr(lang, c) for c in FACT_COLUMNS})
    out = pd.DataFrame(rows, columns=FACT_COLUMNS)
    out["paper_train_size"] = out["paper_train_size"].astype("Int64")
    return out


def codes(corpus: str | None = None) -> list[str]:
    """All codes of the table, or those of one corpus, in table order."""
    df = table()
    if corpus is not None:
        if corpus not in CORPORA:
            raise ValueError(f"unknown corpus {corpus!r}; known: {CORPORA}")
        df = df[df["corpus"] == corpus]
    return df["code"].tolist()
