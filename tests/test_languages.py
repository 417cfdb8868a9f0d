import re

import pandas as pd
import pytest

from polycompress import languages
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
