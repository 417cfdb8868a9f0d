"""Post-training quantization of a fine-tuned token classifier, and what it costs to keep and run.

Two methods (Awobade et al. 2023, section 2.1), both applied to a trained model after
fine-tuning, neither retrained:

``dynamic_int8``
    Every ``nn.Linear`` stored as int8 (per-tensor affine; the classifier head too, which
    ``llm_int8`` below keeps in floating point), its input quantized to 8 bits on the
    fly, for CPU inference. This uses PyTorch's own ``torch.ao.quantization.quantize_dynamic``
    (fbgemm / oneDNN int8 kernels), which PyTorch has marked deprecated in favour of torchao.
    We keep it deliberately, after measuring both on this project's CPU (one thread, a 384 x 1536
    and a 1536 x 384 layer, 1,920 tokens): ``quantize_dynamic`` ran 5.6x faster than float32,
    torchao 0.18's ``Int8DynamicActivationInt8WeightConfig`` 1.35x (eager mode; its fast CPU path
    needs ``torch.compile``). A study of what quantization does to inference time would measure
    the library, not the method, with the slower path. Where a torch no longer has it,
    :class:`QuantizationUnavailable` says so.
``llm_int8``
    LLM.int8 (Dettmers et al. 2022) through ``transformers``' bitsandbytes integration
    (``BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=6.0)``): int8 weights with
    vector-wise scales, and the input columns with an outlier above the threshold multiplied in
    16/32 bits. The classifier head stays in float (as transformers keeps a model's output layer).
    Where the installed bitsandbytes cannot run on the device, :class:`QuantizationUnavailable`
    carries the library's own reason; the study's tables then say "unavailable", never a number.

Sizes are bytes of ``torch.save(model.state_dict())`` (the weights as they would be shipped,
int8 payloads and their scales included); times are wall-clock on the CPU with the thread count
stated (:func:`inference_times`).
"""

from __future__ import annotations

import copy
import io
import logging
import statistics
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..config import QUANTIZATIONS

#: the post-training quantizations a run can evaluate besides the model as trained ("none")
METHODS = QUANTIZATIONS
#: LLM.int8's outlier threshold (the value the paper and bitsandbytes use)
LLM_INT8_THRESHOLD = 6.0
#: the batch of the throughput figure (the paper's inference tables do not state theirs)
BATCH = 32


class QuantizationUnavailable(RuntimeError):
    """This device or these libraries cannot run a quantization method; the message says why."""


def quantize(model: nn.Module, method: str, threshold: float = LLM_INT8_THRESHOLD) -> nn.Module:
    """A quantized copy of ``model`` (a ``transformers`` token classifier, in eval mode, on the
    CPU); ``model`` itself is left as it is. Raises :class:`QuantizationUnavailable` where the
    method cannot run here, ``ValueError`` for an unknown method."""
    if method not in METHODS:
        raise ValueError(f"unknown quantization {method!r}; known: {METHODS}")
    if next(model.parameters()).device.type != "cpu":
        raise QuantizationUnavailable(f"{method} is evaluated on the CPU here; the model is on "
                                      f"{next(model.parameters()).device}")
    if method == "dynamic_int8":
        return _dynamic_int8(model)
    return _llm_int8(model, threshold)


def _dynamic_int8(model: nn.Module) -> nn.Module:
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError as err:  # a future torch without torch.ao.quantization
        raise QuantizationUnavailable(f"dynamic_int8: torch {torch.__version__} has no "
                                      f"torch.ao.quantization.quantize_dynamic ({err})") from err
    engines = torch.backends.quantized.supported_engines
    if not any(e in engines for e in ("x86", "fbgemm", "onednn", "qnnpack")):
        raise QuantizationUnavailable(f"dynamic_int8: this torch build has no int8 engine ({engines})")
    with warnings.catch_warnings():
        # the deprecation notice of torch.ao (see the module docstring for why we keep it)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        return quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)


class _CastNotice(logging.Filter):
    """Drops bitsandbytes' "inputs will be cast from float32 to float16" notice, which it logs at
    every forward pass of every int8 layer fed float32 activations (thousands per test set). The
    cast is part of LLM.int8 on this path, and said once here instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "inputs will be cast" not in record.getMessage()


def _llm_int8(model: nn.Module, threshold: float) -> nn.Module:
    try:
        import bitsandbytes  # noqa: F401  (transformers needs it; its import error is the reason)
        from transformers import BitsAndBytesConfig
    except Exception as err:  # ImportError, or a library that fails to load its native code
        raise QuantizationUnavailable(f"llm_int8: bitsandbytes cannot be loaded here: {err}") from err
    notices = logging.getLogger("bitsandbytes.autograd._functions")
    if not any(isinstance(f, _CastNotice) for f in notices.filters):
        notices.addFilter(_CastNotice())
    config = BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=threshold, llm_int8_skip_modules=["classifier"])
    # transformers quantizes while loading: the trained weights go through a folder, as a
    # fine-tuned model is shipped (and as bitsandbytes' own tests load one)
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantized = type(model).from_pretrained(folder, quantization_config=config, device_map="cpu")
            quantized.eval()
            # one tiny forward pass: a backend that loads but cannot multiply fails here, not mid-table
            with torch.inference_mode():
                quantized(input_ids=torch.ones(1, 4, dtype=torch.long))
        except Exception as err:
            raise QuantizationUnavailable(f"llm_int8: bitsandbytes {bitsandbytes.__version__} cannot run on this "
                                          f"device: {type(err).__name__}: {err}") from err
    return quantized


def saved_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: the weights as shipped, int8 payloads and
    their scales included (a dynamic-quantized layer's packed weights serialise with them)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


@dataclass(frozen=True)
class InferenceTimes:
    """Inference cost on the CPU: medians over ``repeats`` passes over the same sentences."""

    ms_per_sentence_batch1: float  # one sentence at a time: mean milliseconds per sentence
    sentences_per_s_batch32: float  # batches of 32, sorted by length: sentences per second
    sentences: int
    repeats: int
    threads: int


@torch.inference_mode()
def inference_times(model: nn.Module, input_ids: Sequence[Sequence[int]], pad_id: int,
                    repeats: int = 5) -> InferenceTimes:
    """Time ``model``'s forward passes over ``input_ids`` (sub-word ids per sentence, as
    :func:`polycompress.training.encode` gives them): once one sentence at a time, once in
    length-sorted batches of :data:`BATCH`; each ``repeats`` times after one warm-up pass, medians
    reported. The thread count is torch's at the call (stated in the result)."""
    if repeats < 1 or not input_ids:
        raise ValueError("inference_times needs at least one repeat and one sentence")
    model.eval()
    singles = [torch.tensor([list(ids)]) for ids in input_ids]
    order = sorted(range(len(input_ids)), key=lambda i: len(input_ids[i]))
    batches = []
    for start in range(0, len(order), BATCH):
        rows = [list(input_ids[i]) for i in order[start:start + BATCH]]
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            ids[r, :len(row)] = torch.tensor(row)
            mask[r, :len(row)] = 1
        batches.append((ids, mask))

    def one_pass_singles() -> float:
        t = time.perf_counter()
        for ids in singles:
            model(input_ids=ids)
        return time.perf_counter() - t

    def one_pass_batches() -> float:
        t = time.perf_counter()
        for ids, mask in batches:
            model(input_ids=ids, attention_mask=mask)
        return time.perf_counter() - t

    one_pass_singles()  # warm-up: first calls pay for allocation and weight packing
    one_pass_batches()
    single = statistics.median(one_pass_singles() for _ in range(repeats))
    batched = statistics.median(one_pass_batches() for _ in range(repeats))
    return InferenceTimes(ms_per_sentence_batch1=1000 * single / len(singles),
                          sentences_per_s_batch32=len(input_ids) / batched,
                          sentences=len(input_ids), repeats=repeats, threads=torch.get_num_threads())
