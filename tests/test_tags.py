from polycompress.tags import check_tag, harmonise, iob2_violations, label_names, mentions, repair_iob2


def test_label_names_follow_wikiann_order():
    assert label_names(("PER", "ORG", "LOC")) == ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


def test_check_tag():
    assert check_tag("B-PER", ("PER",)) is None
    assert "unknown entity type" in check_tag("B-MISC", ("PER",))
    assert "not IOB2" in check_tag("E-PER", ("PER",))


def test_violations_and_repair():
    tags = ["O", "I-PER", "I-PER", "B-LOC", "I-ORG", "O"]
    assert iob2_violations(tags) == [1, 4]
    fixed, n = repair_iob2(tags)
    assert fixed == ["O", "B-PER", "I-PER", "B-LOC", "B-ORG", "O"] and n == 2
    assert iob2_violations(fixed) == []


def test_harmonise_counts_mentions_not_tokens():
    tags, removed = harmonise(["B-DATE", "I-DATE", "O", "B-PER", "B-DATE"])
    assert tags == ["O", "O", "O", "B-PER", "O"] and removed == 2


def test_mentions_are_end_exclusive():
    assert mentions(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 2), ("LOC", 3, 4)]
