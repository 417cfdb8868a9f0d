"""Knowledge distillation into a student with fewer layers and heads (Awobade et al. 2023, §2.1
and appendix B): the student, how it starts, and the two losses.

**Student.** The teacher's architecture with ``layers`` transformer layers and ``heads``
attention heads per layer, started from the teacher's own weights: the embeddings and the
classifier as they are, and the teacher layers :func:`layer_map` picks (evenly spaced, the last
one included: 12 -> 6 takes layers 1, 3, 5, 7, 9, 11; DistilBERT's own recipe took 0, 2, 4, 7,
9, 11). The hidden size stays, so a layer's weights
copy over whole; ``heads`` only regroups the same query/key/value dimensions into fewer, wider
heads (it must divide the hidden size). That is why the paper's students of 4 or 6 heads have the
same parameter count for the same number of layers.

**Task-specific** (the paper: "adapted from TextBrewer", temperature 8, its appendix B): the
student learns from the fine-tuned teacher's token logits and the gold tags, on the labelled
tokens (first pieces of words): ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) *
cross-entropy`` with ``alpha`` 0.5 (Hinton et al. 2015; the T^2 keeps the soft term's gradients on
the scale of the hard one's). Two departures, stated: the paper gives no loss weights, and
TextBrewer's ``kd_ce_loss`` has no T^2 factor (at T = 8 its soft term is 64 times smaller than
ours relative to the hard one); and the paper's task-specific student starts from its
task-agnostic student ("the already distilled student", appendix B), ours from the teacher's
layers (so the two strategies here differ in how the student is taught, not in where it starts).

**Task-agnostic** (the paper: Hugging Face's DistilBERT recipe on the AfriBERTa corpus,
temperatures 2, 3 and 6): the student learns to reproduce the pre-trained teacher's last hidden
states, then is fine-tuned like any model. Ours differs in two ways, both forced: the corpus is the
training sentences of the study's corpora with their tags dropped (the AfriBERTa corpus is not
reachable offline), and the loss is DistilBERT's cosine term on the hidden states alone, since the
e5 encoder ships without the masked-language-model head the other two terms need (so there is no
temperature to set).

Written here rather than taken from a library: TextBrewer, which the paper used, has had no
release since 0.2.1.post1 (December 2020) and brings its own training loop and tensorboard;
transformers has no distillation trainer. The loss is a few lines, and
:func:`polycompress.training.train` runs it through its ``loss_fn`` (so distillation trains with
the same batches, optimizer, precision and pruning hooks as every other run).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..config import DISTILL_TEMPERATURE as TASK_SPECIFIC_TEMPERATURE
from ..training import IGNORE
#: the student shapes of the paper's grid (Table 1): layers x heads
STUDENT_SHAPES = ((4, 4), (4, 6), (6, 4), (6, 6))


def layer_map(teacher_layers: int, student_layers: int) -> list[int]:
    """Teacher layer (0-based) each student layer starts from: evenly spaced, ending on the
    teacher's last layer (12 -> 4: [2, 5, 8, 11]; 12 -> 6: [1, 3, 5, 7, 9, 11])."""
    if not 1 <= student_layers <= teacher_layers:
        raise ValueError(f"a student has 1 to {teacher_layers} layers, not {student_layers}")
    return [round((i + 1) * teacher_layers / student_layers) - 1 for i in range(student_layers)]


def make_student(teacher: nn.Module, layers: int, heads: int) -> nn.Module:
    """A student of ``teacher``'s class and configuration with ``layers`` layers and ``heads``
    heads, its weights copied from the teacher (:func:`layer_map`); ``teacher`` is unchanged.
    BERT-style models (``encoder.layer.N.``) only."""
    config = copy.deepcopy(teacher.config)
    if config.hidden_size % heads:
        raise ValueError(f"{heads} heads do not divide the hidden size {config.hidden_size}")
    picked = layer_map(config.num_hidden_layers, layers)
    config.num_hidden_layers, config.num_attention_heads = layers, heads
    student = type(teacher)(config)
    source = teacher.state_dict()
    state = {}
    for name in student.state_dict():
        if ".encoder.layer." in name:
            head, rest = name.split(".encoder.layer.", 1)
            index, tail = rest.split(".", 1)
            name_in_teacher = f"{head}.encoder.layer.{picked[int(index)]}.{tail}"
        else:
            name_in_teacher = name
        state[name] = source[name_in_teacher].clone()
    student.load_state_dict(state, strict=True)
    return student


def soft_hard_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                   temperature: float = TASK_SPECIFIC_TEMPERATURE, alpha: float = 0.5) -> torch.Tensor:
    """Task-specific distillation loss over the labelled positions of a batch.

    ``student_logits`` and ``teacher_logits``: (batch, length, tags); ``labels``: (batch, length)
    tag ids, IGNORE where a piece is not scored. Returns a scalar: ``alpha`` times the
    temperature-softened KL divergence (scaled by T^2, mean over labelled tokens) plus ``1 -
    alpha`` times the cross-entropy with the gold tags."""
    if temperature <= 0 or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"temperature must be positive and alpha in [0, 1], got {temperature}, {alpha}")
    scored = labels != IGNORE
    s, t, y = student_logits[scored].float(), teacher_logits[scored].float(), labels[scored]
    soft = F.kl_div(F.log_softmax(s / temperature, -1), F.log_softmax(t / temperature, -1), log_target=True,
                    reduction="batchmean") * temperature**2
    hard = F.cross_entropy(s, y)
    return alpha * soft + (1.0 - alpha) * hard


def task_specific_loss(teacher: nn.Module, temperature: float = TASK_SPECIFIC_TEMPERATURE,
                       alpha: float = 0.5) -> Callable[[nn.Module, dict], torch.Tensor]:
    """``loss_fn`` for :func:`polycompress.training.train`: the fine-tuned ``teacher`` (frozen,
    eval mode) scores each batch, the student learns from its logits and the tags."""
    teacher.eval().requires_grad_(False)

    def loss(student: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        with torch.no_grad():
            target = teacher(**inputs).logits
        return soft_hard_loss(student(**inputs).logits, target, batch["labels"], temperature, alpha)

    return loss


def hidden_state_loss(teacher: nn.Module) -> Callable[[nn.Module, dict], torch.Tensor]:
    """``loss_fn`` for task-agnostic distillation: 1 - cosine similarity between the student's and
    the pre-trained ``teacher``'s last hidden states, (batch, length, hidden), averaged over the
    real (non-padding) tokens. Labels are not used: the text is all it needs."""
    teacher.eval().requires_grad_(False)
    teacher_base = getattr(teacher, teacher.base_model_prefix)

    def loss(student: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        with torch.no_grad():
            target = teacher_base(**inputs).last_hidden_state
        hidden = getattr(student, student.base_model_prefix)(**inputs).last_hidden_state
        real = batch["attention_mask"].bool()
        return (1.0 - F.cosine_similarity(hidden[real].float(), target[real].float(), dim=-1)).mean()

    return loss
