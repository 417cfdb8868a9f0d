"""Device and precision: CPU runs compute as before; the mixed-precision branches meant for CUDA
are exercised on the CPU (autocast and the gradient scaler exist there too). No GPU here: the
CUDA path itself is untested (README)."""

import copy

import pytest
import torch

from polycompress.config import ConfigError, RunConfig
from polycompress.compress.pruning import L0Pruner, Schedule
from polycompress.training import IGNORE, Encoded, autocast, check_precision, predict, resolve_device, train

from test_training import toy_data


def test_devices_resolve_and_precision_is_the_config_s():
    assert resolve_device("cpu") == "cpu" and RunConfig().precision == "fp32"
    # a config's precision is part of its run id; fp32 (the default) leaves older ids as they were
    assert "precision" not in RunConfig().canonical()
    assert RunConfig(precision="bf16").run_id != RunConfig().run_id
    with pytest.raises(ConfigError, match="precision must be one of"):
        RunConfig(precision="fp8")
    assert check_precision("cpu", "fp32") is None
    with pytest.raises(ValueError, match="fp16' is for CUDA"):
        check_precision("cpu", "fp16")
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="torch sees no GPU"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="precision must be one of"):
        autocast("cpu", "fp8")


def test_the_cpu_path_is_unchanged_by_the_device_arguments(tiny_bert):
    """Explicit device="cpu", precision="fp32" computes bit for bit what the defaults compute."""
    data = toy_data()
    kwargs = dict(epochs=2, batch_size=8, learning_rate=1e-3, weight_decay=0.0, seed=3, pad_id=1, progress=False)
    a, b = copy.deepcopy(tiny_bert), copy.deepcopy(tiny_bert)
    torch.manual_seed(0)
    ra = train(a, data, **kwargs)
    torch.manual_seed(0)
    rb = train(b, data, device="cpu", precision="fp32", **kwargs)
    assert [r["loss"] for r in ra.curve] == [r["loss"] for r in rb.curve]
    assert predict(a, data, 16, 1) == predict(b, data, 16, 1, "cpu", "fp32")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_the_model_and_the_l0_gates(tiny_bert, precision):
    """The branches CUDA takes, on the CPU: autocast, and for fp16 the scaled loss with the L0
    gates' own optimizer unscaled (else Adam would see gradients 65,536 times too large)."""
    torch.manual_seed(0)
    model = tiny_bert.train()
    data = toy_data(64)
    pruner = L0Pruner(model, Schedule(start=2, end=12, frequency=2, final=0.5))
    gates = pruner.head_gates.log_alpha.detach().clone()
    before = model.classifier.weight.detach().clone()
    result = train(model, data, epochs=2, batch_size=8, learning_rate=1e-3, weight_decay=0.0, seed=0, pad_id=1,
                   after_step=pruner.step, penalty=pruner.penalty, extra_optimizers=[pruner.optimizer],
                   device="cpu", precision=precision, progress=False)
    losses = [r["loss"] for r in result.curve]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert not torch.equal(model.classifier.weight, before)  # the main optimizer stepped
    assert model.classifier.weight.dtype == torch.float32  # weights stay fp32: autocast casts copies
    moved = (pruner.head_gates.log_alpha.detach() - gates).abs().max()
    # Adam moves a gate by about its learning rate a step (unscaling is checked on its own below)
    assert torch.isfinite(pruner.head_gates.log_alpha).all() and 0 < moved < 16 * pruner.optimizer.param_groups[0]["lr"]
    assert len(predict(model, data, 16, 1, "cpu", precision)) == len(data)


def test_fp16_drops_the_gate_step_when_a_gradient_overflows():
    from polycompress.training import _unscale_or_drop

    gate = torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.Adam([gate], lr=0.1)
    scaler = torch.amp.GradScaler("cpu")
    scaler.scale(torch.ones(()))  # the scale exists once a loss was scaled
    gate.grad = torch.tensor([1.0, float("inf"), 2.0])
    _unscale_or_drop(scaler, optimizer)
    assert gate.grad is None
    optimizer.step()
    assert torch.equal(gate.detach(), torch.zeros(3))  # left alone, as scaler.step leaves the main one
    gate.grad = torch.full((3,), scaler.get_scale())
    optimizer2 = torch.optim.Adam([gate], lr=0.1)
    _unscale_or_drop(scaler, optimizer2)
    assert torch.allclose(gate.grad, torch.ones(3))  # unscaled
