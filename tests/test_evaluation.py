import pytest

from polycompress.evaluation import entity_overlap, score, surface_forms


def test_score_is_seqeval_micro():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "O"]]
    s = score(gold, pred)
    assert s["precision"] == 1.0 and s["recall"] == pytest.approx(2 / 3) and s["f1"] == pytest.approx(0.8)
    assert s["f1_PER"] == 1.0 and s["f1_LOC"] == 0.0 and s["n_mentions"] == 3
    with pytest.raises(ValueError):
        score(gold, [["O"]])


def test_entity_overlap_unique_and_occurrences():
    train = surface_forms([["Paris", "is", "big"], ["New", "York"]], [["B-LOC", "O", "O"], ["B-LOC", "I-LOC"]])
    assert train == ["Paris", "New York"]
    test = ["Paris", "Paris", "Lagos", "New York"]
    o = entity_overlap(train, test)
    assert o["unique"] == pytest.approx(2 / 3) and o["occurrences"] == pytest.approx(3 / 4)
