import re
from pathlib import Path

import pandas as pd
import pytest

from polycompress import languages
from polycompress.corpora import load_language
from polycompress.settings import repo_data_dir


def test_table_covers_the_paper_and_masakhaner():
    df = languages.table()
    assert len(languages.codes("panx")) == 40
    assert len(languages.codes("masakhaner2")) == 18
    assert languages.codes("masakhaner1") == ["amh"]
    assert df["code"].is_unique


def test_no_gaps_in_required_facts():
    df = languages.table()
    for col in ("script", "family", "branch", "family_source", "script_source", "branch_source"):
        assert not df[col].isin(["", "Missing"]).any(), col
    assert df["script"].map(lambda s: bool(re.fullmatch(r"[A-Z][a-z]{3}", s))).all()  # ISO 15924


def test_gaps_of_li2022_are_filled_and_say_so():
    for code, family in (("fa", "Indo-European"), ("ms", "Austronesian"), ("yo", "Niger-Congo")):
        lang = languages.get(code)
        assert lang.family == family
        assert "li2022" in languages.table().loc[code, "family_source"]


def test_paper_sizes_match_table_1():
    ref = pd.read_csv(repo_data_dir() / "reference/ogueji2022/table1_finetuning_sizes.csv")
    for row in ref.itertuples():
        lang = languages.get(row.language)
        assert lang.paper_train_size == row.train_sentences
        assert lang.paper_pretraining_share_pct == pytest.approx(row.bucket_mean_pretraining_token_pct)
        assert lang.paper_mono_subset == bool(row.in_monolingual_subset)
    assert sum(languages.get(c).paper_mono_subset for c in languages.codes("panx")) == 10


def test_unknown_code_is_a_clear_error():
    with pytest.raises(languages.UnknownLanguageError, match=r"unknown language code 'xx'.*languages.csv"):
        languages.get("xx")


# --- languages beyond the table ---------------------------------------------------------------

@pytest.fixture
def table_without(tmp_path, monkeypatch):
    """Point POLYCOMPRESS_LANGUAGES at a copy of the table without some rows."""
    def make(*drop: str) -> Path:
        df = pd.read_csv(repo_data_dir() / "languages.csv", dtype=str, keep_default_na=False)
        path = tmp_path / "languages.csv"
        df[~df["code"].isin(drop)].to_csv(path, index=False)
        monkeypatch.setenv("POLYCOMPRESS_LANGUAGES", str(path))
        return path
    return make


def test_mirror_files_load_under_a_table_that_lacks_their_language(mirror, table_without):
    with_table = {c: load_language(c, root=mirror)[0] for c in ("yor", "sw")}
    table_without("yor", "sw")
    assert "yor" not in languages.table().index and "sw" not in languages.table().index
    yor, sw = languages.get("yor"), languages.get("sw")
    assert (yor.origin, yor.corpus, yor.name, yor.script) == ("derived", "masakhaner2", "Yoruba", "Latn")
    assert (sw.origin, sw.corpus, sw.name, sw.script) == ("derived", "panx", "Swahili", "Latn")
    # Glottolog's family via URIEL+ (not the table's Ethnologue "Niger-Congo"), and the source says so
    assert yor.family == sw.family == "Atlantic-Congo"
    assert "URIEL+" in yor.family_source and "urielplus" in yor.family_source
    assert "languoid yoru1245" in yor.family_source and "macrolanguage" in sw.family_source  # swa is one
    assert "CLDR" in yor.script_source and yor.paper_train_size is None and yor.in_xlmr_pretraining is None
    for code, before in with_table.items():
        after, _ = load_language(code, root=mirror)
        for split in before:  # the same rows whether or not the table lists the language
            assert after[split]["tokens"] == before[split]["tokens"]
            assert after[split]["ner_tags"] == before[split]["ner_tags"]


def test_languages_the_table_lacks_get_their_facts_from_their_code_alone():
    assert "tsn" not in languages.table().index and "zul" not in languages.table().index
    tsn = languages.get("tsn")
    assert (tsn.name, tsn.script, tsn.family, tsn.iso639_3) == ("Tswana", "Latn", "Atlantic-Congo", "tsn")
    zul = languages.get("zul")
    assert (zul.name, zul.corpus, zul.family) == ("Zulu", "masakhaner2", "Atlantic-Congo")


def test_families_come_from_urielplus_and_isolates_relate_no_languages():
    fam = languages.uriel_family
    assert (fam("yor").family, fam("zul").family, fam("tsn").family) == ("Atlantic-Congo",) * 3
    assert fam("deu").family == "Indo-European" and fam("deu").glottocode == "stan1295"
    assert fam("eus").family == "Language isolate" in languages.NOT_A_FAMILY  # Basque: an empty lineage
    assert fam("zho").family == "Sino-Tibetan" and "macrolanguage" in fam("zho").via  # no glottocode of its own
    assert fam("qqq") is None  # a code URIEL+ does not know
    eu = languages.derived("eu")
    assert eu.family == "Language isolate" and not languages.related(eu, languages.derived("eu"), "family")


def test_every_corpus_language_resolves_and_the_table_agrees_with_the_corpus_lists():
    assert len(languages.WIKIANN_CODES) == 176 == len(set(languages.WIKIANN_CODES))
    for code in languages.codes():
        assert languages.corpus_of(code) == languages.get(code).corpus, code
    for code in (*languages.WIKIANN_CODES, *languages.MASAKHANER2_CODES):
        lang = languages.derived(code)
        assert lang.name != languages.UNKNOWN and lang.family != "", code
        assert lang.script == languages.UNKNOWN or re.fullmatch(r"[A-Z][a-z]{3}", lang.script), code


def test_a_script_cldr_does_not_know_is_unknown_not_latin():
    import langcodes

    assert langcodes.Language.get("mwl").maximize().script == "Latn"  # langcodes' und -> en fallback
    mwl = languages.derived("mwl")
    assert mwl.script == languages.UNKNOWN and "not in CLDR" in mwl.script_source
    eml = languages.derived("eml")  # a retired ISO code CLDR has no name for: Glottolog's, via URIEL+
    assert (eml.name, eml.script, eml.family) == ("Emiliano-Romagnolo", languages.UNKNOWN, "Indo-European")


def test_wikipedia_codes_mean_what_wikimedia_says():
    als = languages.derived("als")  # ISO 639-3 "als" would be Tosk Albanian
    assert (als.name, als.iso639_3, als.family, als.script) == ("Alemannic", "gsw", "Indo-European", "Latn")
    yue = languages.derived("zh-yue")
    assert (yue.name, yue.script, yue.family) == ("Cantonese", "Hant", "Sino-Tibetan")
    assert languages.derived("map-bms").family == "Austronesian"


def test_unknown_isolates_and_pseudo_families_relate_no_languages():
    eo, vo = languages.derived("eo"), languages.derived("vo")
    assert eo.family == vo.family == "Artificial Language"
    assert not languages.related(eo, vo, "family") and languages.related(eo, vo, "script")
    mwl, nov = languages.derived("mwl"), languages.derived("nov")
    assert mwl.script == nov.script == languages.UNKNOWN and not languages.related(mwl, nov, "script")
    assert languages.related(languages.get("de"), languages.derived("is"), "family")  # Indo-European both


def test_an_unknown_code_says_where_it_looked_and_suggests_the_corpus_code():
    with pytest.raises(languages.UnknownLanguageError, match=r"not in the table.*WikiANN.*MasakhaNER.*corpus of your own"):
        languages.get("xx")
    with pytest.raises(languages.UnknownLanguageError, match=r"did you mean 'is'"):
        languages.get("isl")


def test_facts_cover_any_code_with_unknown_as_a_value():
    f = languages.facts(["de", "mwl", "mine-not-registered"]).set_index("code")
    assert f.loc["de", "family"] == "Indo-European" and f.loc["mwl", "script"] == languages.UNKNOWN
    assert f.loc["mine-not-registered", "corpus"] == "user" and f["script"].notna().all()


def test_data_check_counts_a_language_beyond_the_table_without_inventing_its_sizes(mirror, table_without, tmp_path):
    import shutil

    from polycompress.datacheck import check_mirror

    root = tmp_path / "mirror"
    for folder in ("masakhaner2/yor", "panx/sw"):
        shutil.copytree(mirror / folder, root / folder)
    table_without("yor", "sw")
    result = check_mirror(root, progress=False)
    assert result.problems == []  # 20 sentences per split: no stated size to compare with
    assert result.table.set_index("language").loc[["yor", "sw"], "train"].tolist() == [20, 20]
    assert any("beyond data/languages.csv, sizes not compared" in n and "sw" in n and "yor" in n
               for n in result.notes)
