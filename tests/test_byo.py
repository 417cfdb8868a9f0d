"""Corpora of one's own: registration, loading any CoNLL shape, run ids that follow the files."""

import shutil
from pathlib import Path

import pytest
import yaml

from polycompress import byo, languages
from polycompress.cli import main
from polycompress.config import ConfigError, RunConfig
from polycompress.conll import CorpusFormatError
from polycompress.corpora import load_language, source_fingerprint
from polycompress.grid import load_grid, with_overrides
from polycompress.perturb import perturbed_test_sets

FIXTURES = Path(__file__).parent / "fixtures"
CONLL2003 = FIXTURES / "conll2003_shaped"


@pytest.fixture(autouse=True)
def clean_registry():
    """Registrations live in the process: each test starts and ends with none."""
    byo._REGISTRY.clear()
    yield
    byo._REGISTRY.clear()


@pytest.fixture
def conll_copy(tmp_path) -> Path:
    """A writable copy of the CoNLL-2003-shaped fixture (train/dev/test.txt)."""
    return Path(shutil.copytree(CONLL2003, tmp_path / "myner"))


def test_a_conll2003_folder_loads_as_a_language_of_its_own(mirror):
    corpus = byo.register(byo.parse("myner", CONLL2003))
    ds, report = load_language("myner")
    panx, _ = load_language("en", root=mirror)
    for split in ds:  # CoNLL-2003's shape and IOB1, back to the very PAN-X rows it was made from
        assert ds[split]["tokens"] == panx[split]["tokens"] and ds[split]["ner_tags"] == panx[split]["ner_tags"]
        assert set(ds[split]["language"]) == {"myner"}
    assert report.schemes == {"train": "IOB1", "validation": "IOB1", "test": "IOB1"}
    assert all(n > 0 for n in report.iob2_converted.values()) and report.docstart_lines == {
        "train": 3, "validation": 3, "test": 3}
    lang = languages.get("myner")
    assert (lang.origin, lang.name, lang.script, lang.family) == ("user", "myner", "unknown", "unknown")
    assert corpus.files()["validation"].name == "dev.txt"


def test_options_choose_columns_name_script_family(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("train.tsv", "validation", "test.conll"):  # any of the accepted names
        (folder / name).write_text("1\tAde\tB-PER\tNNP\n2\tlọ\tO\tVB\n\n1\tAbuja\tB-LOC\tNNP\n", encoding="utf-8")
    byo.register(byo.parse("mine", {"path": str(folder), "token_column": 1, "tag_column": 2,
                                    "language": "Yoruba news", "script": "Latn", "family": "Atlantic-Congo"}))
    ds, _ = load_language("mine")
    assert ds["train"]["tokens"] == [["Ade", "lọ"], ["Abuja"]]
    lang = languages.get("mine")
    assert (lang.name, lang.script, lang.family, lang.script_source) == (
        "Yoruba news", "Latn", "Atlantic-Congo", "given in the corpus registration")


def test_other_types_are_mapped_to_o_and_counted_and_kept_unharmonised(tmp_path):
    folder = tmp_path / "misc"
    folder.mkdir()
    for name in ("train", "dev", "test"):
        (folder / name).write_text("EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n", encoding="utf-8")
    byo.register(byo.parse("misc", folder))
    ds, report = load_language("misc")
    assert report.mentions_mapped_to_o == {"train": 1, "validation": 1, "test": 1}
    raw, _ = load_language("misc", harmonise_tags=False)
    assert "B-MISC" in raw["train"].features["ner_tags"].feature.names


def test_bad_registrations_and_files_are_clear_errors(tmp_path, conll_copy):
    with pytest.raises(byo.CorpusSpecError, match="already a language of the table"):
        byo.parse("yo", conll_copy)
    with pytest.raises(byo.CorpusSpecError, match="already a language"):
        byo.parse("tsn", conll_copy)  # a MasakhaNER language the table lacks
    with pytest.raises(byo.CorpusSpecError, match="unknown options \\['colum'\\]"):
        byo.parse("x", {"path": str(conll_copy), "colum": 2})
    with pytest.raises(byo.CorpusSpecError, match="not an ISO 15924 code"):
        byo.parse("x", {"path": str(conll_copy), "script": "latin"})
    (conll_copy / "test.txt").rename(conll_copy / "tst.txt")
    with pytest.raises(byo.CorpusSpecError, match="no test file for corpus 'x'"):
        byo.parse("x", conll_copy)
    (conll_copy / "tst.txt").rename(conll_copy / "test.txt")
    shutil.copy(conll_copy / "dev.txt", conll_copy / "valid.tsv")
    with pytest.raises(byo.CorpusSpecError, match="2 validation files.*dev.txt, valid.tsv"):
        byo.parse("x", conll_copy)
    (conll_copy / "valid.tsv").unlink()
    lines = (conll_copy / "train.txt").read_text().split("\n")
    lines[5] = lines[5] + " extra"  # line 6 now has five columns
    (conll_copy / "train.txt").write_text("\n".join(lines))
    byo.register(byo.parse("x", conll_copy))
    with pytest.raises(CorpusFormatError, match="expected 4 columns") as err:
        load_language("x")
    assert err.value.line == 6 and err.value.path == str(conll_copy / "train.txt")


def test_run_ids_follow_the_files_not_the_folder(tmp_path, conll_copy):
    config = RunConfig(languages=("myner",), setting="monolingual", corpora={"myner": str(conll_copy)})
    assert config.corpora["myner"]["path"] == str(conll_copy.resolve())
    first = config.run_id
    assert "path" not in config.canonical()["corpora"]["myner"]
    assert "corpora" not in RunConfig(languages=("yo",), setting="monolingual").canonical()  # old ids hold
    # the same files elsewhere: the same run
    moved = Path(shutil.copytree(conll_copy, tmp_path / "elsewhere"))
    byo.unregister("myner")
    assert RunConfig(languages=("myner",), setting="monolingual", corpora={"myner": str(moved)}).run_id == first
    # changed files: a new run, and a new cache key for pools and vocabularies
    before = source_fingerprint("myner")
    text = (moved / "train.txt").read_text()
    assert "Saunders" in text
    (moved / "train.txt").write_text(text.replace("Saunders", "Saunder", 1))
    changed = RunConfig(languages=("myner",), setting="monolingual", corpora={"myner": str(moved)})
    assert changed.run_id != first and source_fingerprint("myner") != before
    # a registered corpus must travel with the run, or its files would not be in the id
    with pytest.raises(ConfigError, match="give it in corpora"):
        RunConfig(languages=("myner",), setting="monolingual")
    with pytest.raises(ConfigError, match="already registered"):
        RunConfig(languages=("myner",), setting="monolingual", corpora={"myner": str(conll_copy)})
    with pytest.raises(ConfigError, match="neither training nor vocabulary"):
        RunConfig(languages=("yo",), setting="monolingual", corpora={"other": str(conll_copy)})


def test_a_grid_file_registers_corpora_relative_to_itself(tmp_path, conll_copy):
    spec = {"languages": ["myner", "yo"], "monolingual": ["yo"], "multilingual": True, "methods": [],
            "scopes": ["partial"], "sparsities": [], "seeds": [0], "epochs": {"default": 1},
            "vocab_languages": [], "corpora": {"myner": "myner"}}
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(spec))
    multi, mono = load_grid(str(tmp_path / "g.yaml")).runs()
    assert list(multi.corpora) == ["myner"] and multi.corpora["myner"]["path"] == str(conll_copy.resolve())
    assert mono.corpora == {}  # a run that does not use the corpus: its id as without the key
    spec["corpora"] = {}
    spec["languages"] = ["yo"]
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(spec))
    assert load_grid(str(tmp_path / "g.yaml")).runs()[1].run_id == mono.run_id
    # a vocabulary trimmed to the grid's languages depends on the corpus: then every run carries it
    spec.update(languages=["myner", "yo"], vocab_languages="languages", corpora={"myner": "myner"})
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(spec))
    assert all("myner" in r.corpora for r in load_grid(str(tmp_path / "g.yaml")).runs())


def test_a_preset_on_ones_own_corpus_from_the_command_line(conll_copy):
    grid = with_overrides(load_grid("smoke"), {"myner": str(conll_copy)}, ["myner"])
    runs = grid.runs()
    assert {r.languages for r in runs} == {("myner",)} and all("myner" in r.corpora for r in runs)
    assert {r.setting for r in runs} == {"multilingual"}  # the preset's monolingual yo is gone


def test_perturbation_of_ones_own_corpus_stays_within_it(conll_copy):
    byo.register(byo.parse("myner", conll_copy))
    sets = perturbed_test_sets("myner", 7)
    assert sets["in_language"].available and sets["in_language"].donors == ["myner"]
    for scope in ("in_script", "in_family"):
        assert not sets[scope].available and "corpus of one's own" in sets[scope].reason


def test_data_check_reports_a_corpus_of_ones_own(conll_copy, capsys):
    assert main(["data", "check", "--corpus", f"myner={conll_copy}"]) == 0
    out = capsys.readouterr().out
    assert "IOB1" in out and "myner" in out and "ok: 1 languages" in out
    assert main(["data", "check", "--corpus", "myner"]) == 2  # NAME=FOLDER
