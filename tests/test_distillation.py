"""Distillation (polycompress.compress.distillation): the student starts from the teacher's own
layers, the losses are what their formulas say, and training through them moves the student
toward the teacher."""

import copy

import pytest
import torch

from polycompress.compress import distillation as d
from polycompress.training import IGNORE, train

from test_training import toy_data


def test_layer_map_is_evenly_spaced_and_ends_on_the_last_layer():
    assert d.layer_map(12, 4) == [2, 5, 8, 11] and d.layer_map(12, 6) == [1, 3, 5, 7, 9, 11]
    assert d.layer_map(2, 2) == [0, 1] and d.layer_map(2, 1) == [1]
    with pytest.raises(ValueError, match="1 to 12 layers"):
        d.layer_map(12, 13)


def test_a_student_copies_its_layers_and_heads_regroup_the_same_weights(tiny_bert):
    student = d.make_student(tiny_bert, layers=1, heads=4)  # 2 -> 1 layer, 2 -> 4 heads of 8
    assert student.config.num_hidden_layers == 1 and student.config.num_attention_heads == 4
    assert tiny_bert.config.num_hidden_layers == 2  # the teacher is unchanged
    t, s = tiny_bert.state_dict(), student.state_dict()
    for name, value in s.items():
        source = name.replace("encoder.layer.0.", "encoder.layer.1.")  # layer_map(2, 1) == [1]
        assert torch.equal(value, t[source]), name
    # fewer layers, fewer parameters; the head count does not change the count
    other = d.make_student(tiny_bert, layers=1, heads=2)
    assert sum(p.numel() for p in student.parameters()) == sum(p.numel() for p in other.parameters())
    assert sum(p.numel() for p in student.parameters()) < sum(p.numel() for p in tiny_bert.parameters())
    with pytest.raises(ValueError, match="do not divide the hidden size 32"):
        d.make_student(tiny_bert, layers=1, heads=5)


def test_the_soft_hard_loss_is_its_formula():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 5, 7, generator=g), torch.randn(2, 5, 7, generator=g)
    labels = torch.randint(0, 7, (2, 5), generator=g)
    labels[0, 0] = labels[1, 4] = IGNORE
    # alpha 0: the cross-entropy of the scored positions
    ce = torch.nn.functional.cross_entropy(s.reshape(-1, 7), labels.reshape(-1), ignore_index=IGNORE)
    assert torch.allclose(d.soft_hard_loss(s, t, labels, 8.0, 0.0), ce)
    # alpha 1, a student equal to the teacher: nothing to learn
    assert float(d.soft_hard_loss(t, t, labels, 8.0, 1.0)) == pytest.approx(0.0, abs=1e-6)
    # the soft term: T^2 x mean over scored tokens of KL(teacher_T || student_T)
    m = labels != IGNORE
    p = torch.softmax(t[m] / 3, -1)
    kl = (p * (p.log() - torch.log_softmax(s[m] / 3, -1))).sum(-1).mean() * 9
    assert torch.allclose(d.soft_hard_loss(s, t, labels, 3.0, 1.0), kl, atol=1e-6)
    # an unscored position changes nothing
    s2 = s.clone()
    s2[0, 0] += 100
    assert torch.allclose(d.soft_hard_loss(s2, t, labels, 3.0, 0.5), d.soft_hard_loss(s, t, labels, 3.0, 0.5))


@pytest.mark.parametrize("kind", ["task_specific", "task_agnostic"])
def test_training_through_a_distillation_loss_moves_the_student_toward_the_teacher(tiny_bert, kind):
    teacher = tiny_bert.eval()
    student = d.make_student(copy.deepcopy(teacher), layers=1, heads=2)
    torch.nn.init.normal_(student.classifier.weight, std=1.0)  # start away from the teacher's head
    loss_fn = d.task_specific_loss(teacher, 2.0, 1.0) if kind == "task_specific" else d.hidden_state_loss(teacher)
    result = train(student, toy_data(48), epochs=6, batch_size=8, learning_rate=3e-3, weight_decay=0.0, seed=0,
                   pad_id=1, progress=False, loss_fn=loss_fn)
    losses = [r["loss"] for r in result.curve]
    assert sum(losses[-6:]) / 6 < 0.7 * sum(losses[:6]) / 6
    assert all(not p.requires_grad for p in teacher.parameters())  # the teacher only taught


@pytest.mark.parametrize("kind", ["task_specific", "task_agnostic"])
def test_a_distillation_run_evaluates_its_student(real_mirror, e5_folder, tmp_path, kind):
    """A real (tiny) run: the rows are the student's (its parameter count), the record holds the
    teacher's or the pre-training distillation's steps and the student's, and bad settings fail
    before anything loads."""
    import json

    from polycompress.config import ConfigError, RunConfig
    from polycompress.experiment import run

    base = dict(languages=("sw",), setting="monolingual", vocab_languages=("sw",), train_size=32, eval_size=8,
                epochs=1.0, batch_size=8, max_length=32, learning_rate=2e-4)
    with pytest.raises(ConfigError, match="student_layers and student_heads"):
        RunConfig(**base, distill=kind)
    with pytest.raises(ConfigError, match="for dense runs"):
        RunConfig(**base, distill=kind, student_layers=4, student_heads=4, method="imp", sparsity=0.5)
    config = RunConfig(**base, distill=kind, student_layers=4, student_heads=4)
    assert config.run_id != RunConfig(**base).run_id and "distill" not in RunConfig(**base).canonical()
    out = run(config, tmp_path, progress=False, device="cpu", threads=1)
    student, teacher = _parameters(config)
    assert set(out.rows["distill"]) == {kind} and set(out.rows["parameters"]) == {student}
    layer = 4 * 384 * 384 + 4 * 384 + 2 * 384 * 1536 + 1536 + 384 + 4 * 384  # one e5-small layer's parameters
    assert teacher - student == 8 * layer  # 4 of 12 layers kept
    record = json.loads((tmp_path / "done.json").read_text())
    assert record["steps"] == 2 * 4  # 32 sentences in batches of 8: teacher (or pre-distillation) + student


def _parameters(config) -> tuple[int, int]:
    """(student, teacher) parameter counts for ``config``'s model and student shape."""
    from transformers import AutoModelForTokenClassification

    from polycompress.experiment import resolve_model

    teacher = AutoModelForTokenClassification.from_pretrained(resolve_model(config), num_labels=7)
    student = d.make_student(teacher, config.student_layers, config.student_heads)
    return sum(p.numel() for p in student.parameters()), sum(p.numel() for p in teacher.parameters())
