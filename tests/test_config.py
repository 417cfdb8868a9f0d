import pytest

from polycompress.config import ConfigError, RunConfig


def test_run_id_is_stable_and_sensitive():
    a = RunConfig(languages=("sw",), setting="monolingual")
    assert a.run_id == RunConfig(languages=["sw"], setting="monolingual").run_id
    assert a.run_id != RunConfig(languages=("sw",), setting="monolingual", seed=1).run_id
    assert len(a.run_id) == 12


@pytest.mark.parametrize("kwargs, message", [
    ({"languages": ("xx",)}, "unknown language code 'xx'"),
    ({"setting": "monolingual", "languages": ("en", "de")}, "monolingual run trains on one language"),
    ({"method": "dense", "sparsity": 0.5}, "method 'dense' goes with sparsity 0"),
    ({"method": "imp", "sparsity": 0.0}, "method 'dense' goes with sparsity 0"),
    ({"method": "imp", "sparsity": 1.2}, "sparsity is a fraction"),
    ({"method": "snip", "sparsity": 0.5}, "unknown method 'snip'"),
    ({"scope": "heads"}, "scope must be one of"),
    ({"train_size": 0}, "train_size must be a positive integer"),
    ({"vocab_languages": ("de",)}, "must include the training languages"),
    ({"embedding_pool": "some"}, "embedding_pool must be one of"),
    ({"method": "imp", "sparsity": 0.5, "scope": "incl_embeddings", "vocab_languages": ("en",), "weight_decay": 0.01},
     "needs weight_decay 0"),
])
def test_invalid_parameters_fail_early(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(**kwargs)


def test_from_parameters_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="unknown parameters \\['sparsity_level'\\]"):
        RunConfig.from_parameters({"sparsity_level": 0.5})
    assert RunConfig.from_parameters({"languages": ["yo"]}).languages == ("yo",)


def test_subnetworks_default_keeps_run_ids_and_non_shared_is_structured_multilingual_only():
    shared = RunConfig(method="grad", sparsity=0.5, languages=("sw", "yo"))
    assert "subnetworks" not in shared.canonical()  # ids of runs from before the field hold
    own = RunConfig(method="grad", sparsity=0.5, languages=("sw", "yo"), subnetworks="non_shared")
    assert own.canonical()["subnetworks"] == "non_shared" and own.run_id != shared.run_id
    assert RunConfig(method="l0", sparsity=0.5, languages=("sw", "yo"), subnetworks="non_shared").run_id != shared.run_id
    with pytest.raises(ConfigError, match="non-shared subnetworks"):
        RunConfig(method="imp", sparsity=0.5, languages=("sw", "yo"), subnetworks="non_shared")
    with pytest.raises(ConfigError, match="non-shared subnetworks"):
        RunConfig(method="grad", sparsity=0.5, setting="monolingual", languages=("sw",), subnetworks="non_shared")
    with pytest.raises(ConfigError, match="no subnetwork to be evaluated with"):
        RunConfig(method="grad", sparsity=0.5, languages=("sw", "yo"), subnetworks="non_shared", eval_languages=("en",))
    with pytest.raises(ConfigError, match="subnetworks must be one of"):
        RunConfig(subnetworks="mine")


def test_the_embedding_rank_is_pruned_by_structured_runs_shared_or_not():
    for method in ("grad", "l0"):
        assert RunConfig(method=method, sparsity=0.5, scope="incl_embeddings").scope == "incl_embeddings"
        assert RunConfig(method=method, sparsity=0.5, languages=("sw", "yo"), scope="incl_embeddings",
                         subnetworks="non_shared").subnetworks == "non_shared"
    assert RunConfig(method="grad", sparsity=0.9, scope="incl_embeddings", dynamic=(0.5, 0.9)).dynamic == (0.5, 0.9)


def test_the_experiment_notebook_passes_every_parameter_to_its_run_config():
    """A field missing from the notebook's parameters cell or its RunConfig(...) call would run
    another configuration than the grid asked for (the runner also checks the written run id)."""
    import re
    from dataclasses import fields
    from pathlib import Path

    import jupytext

    nb = jupytext.read(Path(__file__).parents[1] / "book" / "experiments" / "finetune_prune.md")
    code = [c for c in nb.cells if c.cell_type == "code"]
    params = next(c.source for c in code if "parameters" in c.metadata.get("tags", []))
    names = {f.name for f in fields(RunConfig)}
    assigned = set(re.findall(r"^(\w+) = ", params, flags=re.M))
    assert names <= assigned
    call = next(c.source for c in code if "config = RunConfig(" in c.source)
    assert names <= set(re.findall(r"(\w+)=\1\b", call))


def test_embedding_pool_names_only_runs_it_changes():
    """The pool enters the run id only where it changes the run: IMP of the embeddings of a
    trimmed vocabulary (partial-scope, dense and untrimmed runs keep one id)."""
    imp = dict(method="imp", sparsity=0.5, languages=("en",), vocab_languages=("en",))
    full = RunConfig(scope="incl_embeddings", **imp)
    trimmed = RunConfig(scope="incl_embeddings", embedding_pool="trimmed", **imp)
    assert full.canonical()["embedding_pool"] == "full" and full.run_id != trimmed.run_id
    for scope in ("partial",):
        assert RunConfig(scope=scope, **imp).run_id == RunConfig(scope=scope, embedding_pool="trimmed", **imp).run_id
    untrimmed = dict(imp, vocab_languages=())
    assert (RunConfig(scope="incl_embeddings", **untrimmed).run_id
            == RunConfig(scope="incl_embeddings", embedding_pool="trimmed", **untrimmed).run_id)


def test_the_donor_languages_name_the_run(monkeypatch, mirror, real_mirror):
    """The same parameters on a mirror with other languages build other perturbed sets: another
    run id. The fixture mirror holds a handful of the real mirror's languages."""
    from polycompress.donors import run_donors

    config = RunConfig(languages=("en",), setting="monolingual")
    monkeypatch.setenv("POLYCOMPRESS_DATA", str(real_mirror))
    real = (config.run_id, config.canonical()["donors"])
    monkeypatch.setenv("POLYCOMPRESS_DATA", str(mirror))
    small = (config.run_id, config.canonical()["donors"])
    assert real[1] != small[1] and real[0] != small[0]
    assert set(small[1]["en"]["in_script"]) <= set(real[1]["en"]["in_script"])
    assert small[1] == run_donors(["en"]) and "in_language" not in small[1]["en"]
