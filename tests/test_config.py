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
])
def test_invalid_parameters_fail_early(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(**kwargs)


def test_from_parameters_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="unknown parameters \\['sparsity_level'\\]"):
        RunConfig.from_parameters({"sparsity_level": 0.5})
    assert RunConfig.from_parameters({"languages": ["yo"]}).languages == ("yo",)


def test_subnetworks_default_keeps_run_ids_and_non_shared_is_grad_multilingual_only():
    shared = RunConfig(method="grad", sparsity=0.5, languages=("sw", "yo"))
    assert "subnetworks" not in shared.canonical()  # ids of runs from before the field hold
    own = RunConfig(method="grad", sparsity=0.5, languages=("sw", "yo"), subnetworks="non_shared")
    assert own.canonical()["subnetworks"] == "non_shared" and own.run_id != shared.run_id
    with pytest.raises(ConfigError, match="non-shared subnetworks"):
        RunConfig(method="l0", sparsity=0.5, languages=("sw", "yo"), subnetworks="non_shared")
    with pytest.raises(ConfigError, match="non-shared subnetworks"):
        RunConfig(method="grad", sparsity=0.5, setting="monolingual", languages=("sw",), subnetworks="non_shared")
    with pytest.raises(ConfigError, match="subnetworks must be one of"):
        RunConfig(subnetworks="mine")


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
