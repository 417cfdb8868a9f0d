"""Post-training quantization (polycompress.compress.quantization) on a tiny BERT built in-process:
each method replaces what it says, keeps the predictions close to the float model's, ships
fewer bytes, and a method that cannot run says why instead of returning a number."""

import pytest
import torch
from torch import nn

from polycompress.compress import quantization as q


def _inputs(n: int = 12, length: int = 9) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(5, 120, (n, length), generator=g)


def _agreement(a: nn.Module, b: nn.Module, ids: torch.Tensor) -> float:
    with torch.inference_mode():
        return float((a(input_ids=ids).logits.argmax(-1) == b(input_ids=ids).logits.argmax(-1)).float().mean())


def _trained(tiny_bert: nn.Module) -> nn.Module:
    """The tiny model with weights scaled up a little, so that its logits are not all near 0 and
    argmax agreement means something."""
    with torch.no_grad():
        for m in tiny_bert.modules():
            if isinstance(m, nn.Linear):
                m.weight.mul_(4)
    return tiny_bert.eval()


def test_dynamic_int8_quantizes_every_linear_and_keeps_predictions(tiny_bert):
    model = _trained(tiny_bert)
    before = {n: p.clone() for n, p in model.state_dict().items()}
    quantized = q.quantize(model, "dynamic_int8")
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    linears = [m for m in quantized.modules() if isinstance(m, nn.Linear | DynamicLinear)]
    assert len(linears) == 2 * 6 + 1 and all(isinstance(m, DynamicLinear) for m in linears)  # classifier too
    # the float model is left as it was
    assert all(torch.equal(before[n], p) for n, p in model.state_dict().items())
    assert _agreement(model, quantized, _inputs()) >= 0.9
    # a linear layer's 4-byte floats become 1-byte ints: the linear-heavy part shrinks
    assert q.saved_bytes(quantized) < q.saved_bytes(model)


def test_llm_int8_runs_here_or_says_why(tiny_bert):
    model = _trained(tiny_bert)
    try:
        quantized = q.quantize(model, "llm_int8")
    except q.QuantizationUnavailable as err:
        assert "llm_int8" in str(err) and str(err).split(":", 1)[1].strip()  # the library's reason
        pytest.skip(f"LLM.int8 unavailable here: {err}")
    import bitsandbytes as bnb

    int8 = [m for m in quantized.modules() if isinstance(m, bnb.nn.Linear8bitLt)]
    assert len(int8) == 2 * 6  # every encoder Linear (Q, K, V, O, FFN in, FFN out) of 2 layers
    assert all(m.weight.dtype == torch.int8 for m in int8)
    assert not isinstance(quantized.classifier, bnb.nn.Linear8bitLt)  # the head stays float
    assert _agreement(model, quantized, _inputs()) >= 0.9


def test_unknown_method_and_bad_timing_requests_fail(tiny_bert):
    with pytest.raises(ValueError, match="unknown quantization 'int4'"):
        q.quantize(tiny_bert, "int4")
    with pytest.raises(ValueError, match="at least one repeat"):
        q.inference_times(tiny_bert, [[5, 6]], pad_id=0, repeats=0)


def test_inference_times_are_positive_and_state_their_conditions(tiny_bert):
    ids = [list(range(5, 5 + n)) for n in (3, 7, 4, 9, 2)]
    t = q.inference_times(tiny_bert.eval(), ids, pad_id=0, repeats=3)
    assert t.ms_per_sentence_batch1 > 0 and t.sentences_per_s_batch32 > 0
    assert (t.sentences, t.repeats, t.threads) == (5, 3, torch.get_num_threads())


def test_a_run_scores_its_quantized_copies_next_to_the_model_as_trained(real_mirror, e5_folder, tmp_path):
    """A real (tiny) run with quantizations: one regular row per language and method beside the
    float model's, the sizes of what would be shipped, and loading the grid's table keeps the
    models as trained unless asked."""
    from polycompress.config import ConfigError, RunConfig
    from polycompress.experiment import run

    config = RunConfig(languages=("sw",), setting="monolingual", vocab_languages=("sw",), train_size=64, eval_size=16,
                       epochs=1.0, batch_size=8, max_length=32, learning_rate=2e-4, method="imp", sparsity=0.5,
                       quantizations=("dynamic_int8", "llm_int8"))
    assert config.canonical()["quantizations"] == ["dynamic_int8", "llm_int8"]
    with pytest.raises(ConfigError, match="dense and imp models"):
        RunConfig(method="grad", sparsity=0.5, quantizations=("dynamic_int8",))
    with pytest.raises(ConfigError, match="distinct values"):
        RunConfig(quantizations=("int4",))
    rows = run(config, tmp_path, progress=False, device="cpu", threads=1).rows
    regular = rows[rows["test_set"] == "regular"].set_index("quantization")
    assert sorted(regular.index) == ["dynamic_int8", "llm_int8", "none"]
    assert set(rows.loc[rows["test_set"] != "regular", "quantization"]) == {"none"}  # perturbed: as trained only
    float_bytes = regular.loc["none", "model_bytes"]
    assert regular.loc["dynamic_int8", "model_bytes"] < float_bytes
    for method in ("dynamic_int8", "llm_int8"):
        r = regular.loc[method]
        if r["n_sentences"] == 0:  # only where the library says it cannot run here
            assert r["test_set_note"].startswith("unavailable on this device:") and method == "llm_int8"
        else:
            assert r["n_sentences"] == 16 and 0 <= r["f1"] <= 1 and r["model_bytes"] < float_bytes
