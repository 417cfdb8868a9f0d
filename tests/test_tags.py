from polycompress.tags import (check_tag, harmonise, iob2_violations, label_names, mentions, repair_iob2,
                               scheme_of, to_iob2)


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


def test_to_iob2_reads_iob1_and_bioes_mentions():
    assert to_iob2(["I-PER", "I-PER", "B-PER", "O", "I-LOC"]) == (["B-PER", "I-PER", "B-PER", "O", "B-LOC"], 2)
    assert to_iob2(["S-ORG", "B-LOC", "E-LOC", "S-LOC"]) == (["B-ORG", "B-LOC", "I-LOC", "B-LOC"], 3)
    tags = ["O", "I-PER", "B-LOC", "I-ORG"]
    assert to_iob2(tags) == repair_iob2(tags)  # on IOB2 input it is the repair


def test_scheme_of():
    assert scheme_of(["B-PER", "I-PER", "O", "B-LOC"]) == "IOB2"
    assert scheme_of(["I-PER", "I-PER", "B-PER", "O", "I-LOC"]) == "IOB1"
    assert scheme_of(["S-PER", "O", "B-LOC", "E-LOC"]) == "BIOES"
    assert scheme_of(["B-PER", "O", "I-LOC"]) == "IOB2 with violations"


def test_check_tag_with_other_prefixes_and_any_type():
    assert check_tag("S-MISC", None, "BIES") is None
    assert "not IOB1, IOB2 or BIOES" in check_tag("U-PER", None, "BIES")
