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
