"""The published numbers of Ogueji et al. (2022), from ``data/reference/ogueji2022`` (Tables 1-9),
of Awobade et al. (2023), from ``data/reference/awobade2023``, of Li et al. (2022), from
``data/reference/li2022``, and XLM-R's pre-training data per language (Conneau et al. 2020), from
``data/reference/xlmr2020``."""

from __future__ import annotations

import pandas as pd

from .settings import repo_data_dir

GROUP = ["paper_table", "setting", "test_set", "pruning_scope", "sparsity"]


def f1_by_language() -> pd.DataFrame:
    """Every per-language cell of appendix Tables 2-9 (F1 as a fraction, mean of three seeds)."""
    return pd.read_csv(repo_data_dir() / "reference" / "ogueji2022" / "f1_by_language.csv")


def summary_rows() -> pd.DataFrame:
    """The "means" and "medians" rows printed under each table."""
    return pd.read_csv(repo_data_dir() / "reference" / "ogueji2022" / "f1_summary_rows.csv")


def table1() -> pd.DataFrame:
    return pd.read_csv(repo_data_dir() / "reference" / "ogueji2022" / "table1_finetuning_sizes.csv")


def awobade_quantization() -> pd.DataFrame:
    """Awobade et al. (2023) Tables 3 and 4: per MasakhaNER language (its 3-letter codes), F1 in
    percent (``metric`` "f1_percent") and inference time in ms ("inference_ms") of the
    fine-tuned AfriBERTa-large as trained (``quantization`` "none"), dynamic int8 and LLM.int8."""
    return pd.read_csv(repo_data_dir() / "reference" / "awobade2023" / "quantization.csv")


def awobade_prune_before() -> pd.DataFrame:
    """Awobade et al. (2023) Table 8: pruning before fine-tuning, per sparsity (fraction) and
    MasakhaNER language: loss, precision, recall, F1 (fractions), inference time (unit unstated)
    and parameters pruned."""
    return pd.read_csv(repo_data_dir() / "reference" / "awobade2023" / "table8_prune_before_finetuning.csv")


def awobade_prune_after() -> pd.DataFrame:
    """Awobade et al. (2023) Table 9: pruning after fine-tuning, the rows our text copy of the paper
    renders cleanly (six languages at 40%, all ten from 50% to 95%; its 10-30% blocks are garbled),
    with the columns of :func:`awobade_prune_before`."""
    return pd.read_csv(repo_data_dir() / "reference" / "awobade2023" / "table9_prune_after_finetuning.csv")


def awobade_distillation() -> pd.DataFrame:
    """Awobade et al. (2023) Table 1: F1 in percent per MasakhaNER language (and the printed
    ``avg``) of each distilled student: ``strategy`` (task_agnostic, task_specific), ``teacher``
    (AfriBERTa-base or -large), ``layers`` x ``heads`` and its ``params`` as printed (83M, 97M)."""
    return pd.read_csv(repo_data_dir() / "reference" / "awobade2023" / "table1_distillation.csv")


def awobade_teachers_students() -> pd.DataFrame:
    """Awobade et al. (2023) Table 2: F1 in percent per language (and ``avg``) of the two
    teachers (``role`` teacher) and the best student of each teacher and strategy."""
    return pd.read_csv(repo_data_dir() / "reference" / "awobade2023" / "table2_teachers_students.csv",
                       keep_default_na=False)


def li_dynamic_sparsification() -> pd.DataFrame:
    """Li et al. (2022) Table 3: ``method`` (grad, l0), ``subnetworks``, ``dynamic`` (trained with
    Dynamic Sparsification or for 50% alone), ``task``, ``metric`` and ``value`` in percent."""
    return pd.read_csv(repo_data_dir() / "reference" / "li2022" / "table3_dynamic_sparsification.csv")


def xlmr_pretraining_tokens() -> pd.DataFrame:
    """XLM-R's CC-100 pre-training data per PAN-X language (Conneau et al. 2020, Table 6):
    ``code``, ``tokens_millions``, ``note``; a language XLM-R did not see (yo) has no row."""
    return pd.read_csv(repo_data_dir() / "reference" / "xlmr2020" / "cc100_tokens.csv", keep_default_na=False,
                       na_values={"tokens_millions": [""]})


def aggregate(cells: pd.DataFrame) -> pd.DataFrame:
    """Mean and median F1 over languages for each table and sparsity (the summary rows' recipe)."""
    stats = cells.groupby(GROUP)["f1"].agg(["mean", "median"]).reset_index()
    return stats.melt(id_vars=GROUP, var_name="statistic", value_name="f1")


def compare_with_printed() -> pd.DataFrame:
    """Our aggregation of the published cells next to the printed rows, with the difference.

    The cells are rounded to 4 decimals and the paper computed its rows before rounding, so a
    recomputation can differ from the printed value by up to one unit in the 4th decimal.
    """
    ours = aggregate(f1_by_language()).rename(columns={"f1": "recomputed"})
    printed = summary_rows().rename(columns={"f1": "printed"})
    out = printed.merge(ours, on=[*GROUP, "statistic"], how="left", validate="one_to_one")
    out["difference"] = out["recomputed"] - out["printed"]
    return out


def as_long() -> pd.DataFrame:
    """The published cells in the long format of :func:`polycompress.analysis.as_long`."""
    cells = f1_by_language()
    return pd.DataFrame({
        "source": "paper", "setting": cells["setting"],
        "test_set": cells["test_set"].replace({"perturbed_in_language": "in_language"}),
        "scope": cells["pruning_scope"], "language": cells["language"], "sparsity": cells["sparsity"],
        "seed": -1, "f1": cells["f1"],  # seed -1: a mean over the paper's three seeds
    })
