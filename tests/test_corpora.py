import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

from polycompress.conll import CorpusFormatError
from polycompress.corpora import from_hub_dataset, load_language, mention_counts, subsample
from polycompress.languages import UnknownLanguageError


def test_panx_language_as_datasetdict(mirror):
    ds, report = load_language("de", root=mirror)
    assert isinstance(ds, DatasetDict) and list(ds) == ["train", "validation", "test"]
    assert ds["train"].features["ner_tags"].feature.names == ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    assert set(ds["test"]["language"]) == {"de"}
    assert report.sentences == {"train": 30, "validation": 30, "test": 30}


def test_masakhaner_date_mapped_to_o_and_counted(mirror):
    raw, _ = load_language("kin", root=mirror, harmonise_tags=False)
    ds, report = load_language("kin", root=mirror)
    dates = sum(mention_counts(raw[s])["DATE"] for s in raw)
    assert dates > 0 and sum(report.mentions_mapped_to_o.values()) == dates
    assert "B-DATE" in raw["train"].features["ner_tags"].feature.names
    assert all(mention_counts(ds[s])["DATE"] == 0 for s in ds)
    # other mentions are untouched
    for split in ds:
        a, b = mention_counts(raw[split]), mention_counts(ds[split])
        assert all(a[t] == b[t] for t in ("PER", "ORG", "LOC"))


def test_rahimi_release_equals_panx(mirror):
    raw, _ = load_language("en", root=mirror, layout="wikiann-rahimi")
    panx, _ = load_language("en", root=mirror)
    for split in panx:
        assert raw[split]["tokens"] == panx[split]["tokens"]
        assert raw[split]["ner_tags"] == panx[split]["ner_tags"]


def test_errors(mirror, tmp_path):
    with pytest.raises(UnknownLanguageError):
        load_language("xx", root=mirror)
    with pytest.raises(CorpusFormatError, match="no panx data for language 'fr'"):
        load_language("fr", root=mirror)
    broken = tmp_path / "panx" / "de"
    broken.mkdir(parents=True)
    (broken / "train.tsv").write_text((mirror / "panx/de/train.tsv").read_text())
    (broken / "dev.tsv").write_text((mirror / "panx/de/dev.tsv").read_text())
    with pytest.raises(CorpusFormatError, match="missing test split"):
        load_language("de", root=tmp_path)
    with pytest.raises(ValueError, match="unknown source"):
        load_language("de", source="ftp", root=mirror)


def test_hub_shaped_dataset_gives_the_same_rows(mirror):
    """The hub path (wikiann's ClassLabel order) goes through the same checks as files."""
    ds, _ = load_language("yo", root=mirror)
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    feats = Features({"tokens": Sequence(Value("string")), "ner_tags": Sequence(ClassLabel(names=names)),
                      "langs": Sequence(Value("string"))})
    hub = DatasetDict({
        split: Dataset.from_dict({"tokens": ds[split]["tokens"], "ner_tags": ds[split]["ner_tags"],
                                  "langs": [["yo"] * len(t) for t in ds[split]["tokens"]]}, features=feats)
        for split in ds
    })
    back, report = from_hub_dataset("yo", hub, "hub:unimelb-nlp/wikiann")
    for split in ds:
        assert back[split]["tokens"] == ds[split]["tokens"]
        assert back[split]["ner_tags"] == ds[split]["ner_tags"]
    assert report.source == "hub:unimelb-nlp/wikiann"


def test_subsample_is_deterministic_nested_and_ordered(mirror):
    train = load_language("de", root=mirror)[0]["train"].add_column("row", list(range(30)))
    a, b = subsample(train, 10, seed=1), subsample(train, 10, seed=1)
    assert a["row"] == b["row"] == sorted(a["row"])
    assert subsample(train, 10, seed=2)["row"] != a["row"]
    assert set(subsample(train, 5, seed=1)["row"]) <= set(a["row"])
    with pytest.raises(ValueError, match="cannot draw 31"):
        subsample(train, 31, seed=1)


def test_hub_rows_follow_the_file_rules():
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    feats = Features({"tokens": Sequence(Value("string")), "ner_tags": Sequence(ClassLabel(names=names))})
    row = {"tokens": [["Ade", "", "lọ"]] * 2, "ner_tags": [[1, 0, 2]] * 2}  # empty O token; I-PER after O
    hub = DatasetDict({s: Dataset.from_dict(row, features=feats) for s in ("train", "validation", "test")})
    ds, report = from_hub_dataset("yo", hub, "hub:test")
    assert ds["train"][0]["tokens"] == ["Ade", "lọ"]
    assert report.empty_tokens_dropped["train"] == 2 and report.iob2_repaired["train"] == 0
    with pytest.raises(CorpusFormatError, match="empty token"):
        from_hub_dataset("yo", hub, "hub:test", strict=True)
