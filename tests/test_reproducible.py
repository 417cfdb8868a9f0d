"""The same run twice (same parameters, seed and thread count) gives identical results: the
predictions of every test sentence, hence F1, and the training loss of every step, bit for bit.

Both go through the runner's one code path (papermill, the notebook, an attempt folder) with one
torch thread, as a Ray task with one CPU runs. What may change results is listed in the README
("Reproducibility"): the thread count, the CPU kind and the torch version.
"""

import dataclasses
import json

import pandas as pd
import pytest

from polycompress.config import RunConfig
from polycompress.runner import Execution, execute_run, run_dir

# Small but not trivial: 32 optimizer steps, enough to predict entities (F1 > 0) on the test sample.
CONFIG = RunConfig(languages=("sw",), setting="monolingual", vocab_languages=("sw",), train_size=128, eval_size=16,
                   epochs=2.0, batch_size=8, max_length=32, learning_rate=2e-4, method="imp", sparsity=0.5)


# fp32, and bf16 autocast (the default study's arithmetic: oneDNN's bf16 kernels are as deterministic)
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_same_run_twice_gives_identical_predictions_and_f1(real_mirror, e5_folder, tmp_path, precision):
    config = dataclasses.replace(CONFIG, precision=precision)
    execution = Execution(device="cpu", threads=1, stream=False)
    folders = []
    for name in ("a", "b"):
        outcome = execute_run(config, tmp_path / name, execution)
        assert outcome.status == "ran", outcome.error
        folders.append(run_dir(tmp_path / name, config))
    a, b = (pd.read_parquet(f / "rows.parquet") for f in folders)
    assert a["f1"].max() > 0  # something was learned: equal predictions are not all "O"
    pd.testing.assert_frame_equal(a, b)  # every metric, every language and test set
    pd.testing.assert_frame_equal(*(pd.read_parquet(f / "predictions.parquet") for f in folders))
    losses = [pd.read_csv(f / "curve.csv")["loss"].tolist() for f in folders]
    assert len(losses[0]) == 32 and losses[0] == losses[1]
    for f in folders:
        record = json.loads((f / "done.json").read_text())
        assert record["torch_threads"] == 1 and record["device"] == "cpu" and record["precision"] == precision
    assert set(a["arithmetic"]) == {precision}
