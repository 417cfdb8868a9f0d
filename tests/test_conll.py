from pathlib import Path

import pytest

from polycompress.conll import CorpusFormatError, read_conll

TYPES = ("PER", "ORG", "LOC")


def write(tmp_path: Path, text: str | bytes, name: str = "f.tsv") -> Path:
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return p


def test_reads_real_panx_excerpt(mirror):
    sents, report = read_conll(mirror / "panx/en/train.tsv", separator="\t", types=TYPES)
    assert len(sents) == 30 and report.sentences == 30
    assert sents[0].tokens[:2] == ("R.H.", "Saunders") and sents[0].tags[:2] == ("B-ORG", "I-ORG")
    assert sents[0].line == 1 and report.iob2_repaired == 0


def test_strips_the_rahimi_prefix(mirror):
    raw, _ = read_conll(mirror / "wikiann-rahimi/en/train", separator="\t", types=TYPES, token_prefix="en:")
    panx, _ = read_conll(mirror / "panx/en/train.tsv", separator="\t", types=TYPES)
    assert [(s.tokens, s.tags) for s in raw] == [(s.tokens, s.tags) for s in panx]


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("a\tO\nb\tO\tx\n", 2, "expected 2 columns"),
        ("a\tO\n\nb\tB-MISC\n", 3, "unknown entity type 'MISC'"),
        ("a\tO\r\n", 1, "CRLF"),
        ("a\tO\n\tB-PER\n", 2, "empty token tagged 'B-PER'"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(CorpusFormatError, match=message) as err:
        read_conll(path, separator="\t", types=TYPES)
    assert err.value.line == line and str(path) in str(err.value)


def test_undecodable_bytes_report_the_line(tmp_path):
    path = write(tmp_path, b"a\tO\nb\tO\n\n\xff\xfe\tO\n")
    with pytest.raises(CorpusFormatError, match="not UTF-8") as err:
        read_conll(path, separator="\t", types=TYPES)
    assert err.value.line == 4


def test_empty_file(tmp_path):
    with pytest.raises(CorpusFormatError, match="empty file"):
        read_conll(write(tmp_path, "\n\n"), separator="\t", types=TYPES)


def test_missing_prefix(tmp_path):
    with pytest.raises(CorpusFormatError, match="lacks the prefix 'en:'") as err:
        read_conll(write(tmp_path, "en:a\tO\nb\tO\n"), separator="\t", types=TYPES, token_prefix="en:")
    assert err.value.line == 2


def test_iob2_violations_repaired_and_counted_or_rejected(mirror):
    path = mirror / "masakhaner2/kin/train.txt"  # a real "y'u O / Rwanda I-ORG"
    types = TYPES + ("DATE",)
    sents, report = read_conll(path, separator=" ", types=types)
    assert report.iob2_repaired == 1
    last = sents[-1]  # the appended sentence holding mirror line 7968
    i = next(i for i in range(1, len(last.tokens)) if last.tokens[i - 1 : i + 1] == ("y'u", "Rwanda"))
    assert last.tags[i - 1 : i + 1] == ("O", "B-ORG")
    with pytest.raises(CorpusFormatError, match="IOB2 violation"):
        read_conll(path, separator=" ", types=types, strict=True)


def test_empty_tokens_dropped_and_counted_or_rejected(mirror):
    path = mirror / "masakhaner2/xho/train.txt"  # two real empty tokens tagged O
    sents, report = read_conll(path, separator=" ", types=TYPES + ("DATE",))
    assert report.empty_tokens_dropped == 2
    assert all(tok for s in sents for tok in s.tokens)
    with pytest.raises(CorpusFormatError, match="empty token"):
        read_conll(path, separator=" ", types=TYPES + ("DATE",), strict=True)


def test_extra_blank_lines_are_counted(tmp_path):
    sents, report = read_conll(write(tmp_path, "a\tO\n\n\n\nb\tO\n"), separator="\t", types=TYPES)
    assert len(sents) == 2 and report.extra_blank_lines == 2


# --- any CoNLL shape (corpora of one's own) ---------------------------------------------------

ANY = {"separator": None, "types": None, "columns": None, "docstart": True, "any_scheme": True}


def test_conll2003_shape_iob1_to_iob2_with_the_changes_counted(mirror):
    panx, _ = read_conll(mirror / "panx/en/train.tsv", separator="\t", types=TYPES)
    path = mirror.parent / "conll2003_shaped/train.txt"
    sents, report = read_conll(path, **ANY)
    assert [(s.tokens, s.tags) for s in sents] == [(s.tokens, s.tags) for s in panx]  # IOB1 undone exactly
    # every mention start that does not follow a mention of its type was written I-X in IOB1
    starts = sum(1 for s in panx for i, t in enumerate(s.tags)
                 if t.startswith("B-") and not (i and s.tags[i - 1][2:] == t[2:]))
    assert report.scheme == "IOB1" and report.iob2_converted == starts > 0
    assert report.docstart_lines == 3 and report.columns == 4 and report.extra_blank_lines == 0
    assert report.iob2_repaired == 0


def test_bioes_converts_to_iob2(tmp_path):
    text = "Ade\tS-PER\nlọ\tO\nsí\tO\nNew\tB-LOC\nYork\tI-LOC\nCity\tE-LOC\n\nAbuja\tS-LOC\nLagos\tS-LOC\n"
    sents, report = read_conll(write(tmp_path, text), **ANY)
    assert sents[0].tags == ("B-PER", "O", "O", "B-LOC", "I-LOC", "I-LOC")
    assert sents[1].tags == ("B-LOC", "B-LOC")  # two adjacent single-token mentions stay two
    assert report.scheme == "BIOES" and report.iob2_converted == 4  # S->B three times, E->I once


def test_a_column_option_picks_a_middle_column(tmp_path):
    text = "1 Ade B-PER NNP\n2 lọ O VB\n\n1 Abuja B-LOC NNP\n"
    sents, report = read_conll(write(tmp_path, text), **{**ANY, "token_column": 1, "tag_column": 2})
    assert [s.tokens for s in sents] == [("Ade", "lọ"), ("Abuja",)]
    assert sents[0].tags == ("B-PER", "O") and report.columns == 4
    with pytest.raises(CorpusFormatError, match="tag column 7 does not exist") as err:
        read_conll(write(tmp_path, text), **{**ANY, "tag_column": 7})
    assert err.value.line == 1


@pytest.mark.parametrize("text, line, message", [
    ("a _ _ O\nb _ O\n", 2, r"expected 4 columns separated by whitespace \(as on line 1\), found 3"),
    ("-DOCSTART- -X- -X- O\n\na _ _ O\nb _ _ X-PER\n", 4, "is not IOB1, IOB2 or BIOES"),
    ("a\tO\nb c\n", 2, "expected 2 columns separated by tabs"),
    ("a\n", 1, "at least 2 columns"),
])
def test_malformed_lines_of_any_shape_name_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(CorpusFormatError, match=message) as err:
        read_conll(path, **ANY)
    assert err.value.line == line and str(path) in str(err.value)


def test_a_mixed_scheme_file_is_iob2_with_violations_repaired_or_rejected(tmp_path):
    path = write(tmp_path, "a B-PER\nb O\nc I-PER\n")  # a fresh B- and a fresh I-: not IOB1
    sents, report = read_conll(path, **ANY)
    assert report.scheme == "IOB2 with violations" and report.iob2_repaired == 1 and sents[0].tags[2] == "B-PER"
    with pytest.raises(CorpusFormatError, match="IOB2 violation"):
        read_conll(path, **ANY, strict=True)
