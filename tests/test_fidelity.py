"""The paper against its own tables: the checks recompute what the text states, and can flip."""

import pandas as pd

from polycompress import fidelity, reference


def test_every_check_runs_on_the_published_tables():
    table = fidelity.checks()
    assert len(table) == len(fidelity.CHECKS) >= 12
    assert set(table["agreement"]) <= set(fidelity.AGREEMENT)
    assert table["recomputed"].str.len().min() > 10  # a figure, not an empty cell


def test_known_recomputations():
    """Figures a reader can check by hand in Tables 2 and 6."""
    p = reference.as_long()
    benefit = fidelity.majority_benefit(p)
    assert "at 50% 23 of 40" in benefit.recomputed and benefit.agreement == "disagrees"
    exceptions = fidelity.multilingual_everywhere(p)
    assert exceptions.agreement == "agrees" and exceptions.recomputed.startswith("3 cells")
    yo = fidelity.smallest_all_benefit(p)
    assert yo.agreement == "in part" and "yo: dense 0.728, 50% 0.702, 70% 0.723" in yo.recomputed


def test_a_check_follows_the_numbers_it_reads():
    """Raise yo's 50% cell above its dense one and the 100-sentence statement holds."""
    p = reference.as_long()
    cell = ((p["setting"] == "multilingual") & (p["scope"] == "partial") & (p["test_set"] == "regular")
            & (p["language"] == "yo") & (p["sparsity"] == 50))
    assert cell.sum() == 1
    edited = p.copy()
    edited.loc[cell, "f1"] = 0.80
    assert fidelity.smallest_all_benefit(edited).agreement == "agrees"
    assert fidelity.smallest_all_benefit(p).agreement == "in part"
    assert isinstance(fidelity.checks(edited), pd.DataFrame)
