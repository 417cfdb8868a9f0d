"""Read token-per-line NER files (PAN-X tsv, the Rahimi release, MasakhaNER, any CoNLL file).

One reader for every layout: the corpora of the mirror differ only in the column separator and
in the ``lang:`` prefix the original WikiANN release puts on every token; a corpus of one's own
(:mod:`polycompress.byo`) may also have 2 to N columns (token and tag anywhere among them),
``-DOCSTART-`` lines and IOB1 or BIOES tags, which are converted to IOB2 and counted. Every
problem is reported with the file and line; IOB2 violations are repaired and counted, or
rejected in strict mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .tags import check_tag, repair_iob2, scheme_of, to_iob2

DOCSTART = "-DOCSTART-"  # CoNLL-2003's document separator line (its token column)
SEPARATOR_NAMES = {"\t": "tabs", " ": "single spaces", None: "whitespace"}


class CorpusFormatError(ValueError):
    """A problem in a corpus file, located by file and line (lines count from 1)."""

    def __init__(self, path: Path | str, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Sentence:
    """Tokens and their IOB2 tags; ``line`` is the file line of the first token."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    line: int


@dataclass
class ReadReport:
    """What reading one file changed or skipped: nothing happens without a count here."""

    path: str
    sentences: int = 0
    iob2_repaired: int = 0  # I-X not continuing an X mention, made B-X (IOB2 files)
    extra_blank_lines: int = 0
    empty_tokens_dropped: int = 0
    repaired_lines: list[int] = field(default_factory=list)
    scheme: str = "IOB2"  # the file's tagging scheme (tags.scheme_of) when any scheme is allowed
    iob2_converted: int = 0  # tags changed to convert an IOB1 or BIOES file to IOB2
    docstart_lines: int = 0  # -DOCSTART- lines skipped (each ends a sentence)
    columns: int = 2  # columns per line


def check_token(token: str, tag: str, types: tuple[str, ...] | None, strict: bool, prefixes: str = "BI") -> bool:
    """The per-token rules shared by files and hub rows: False means drop (and count) the token.

    Raises ValueError, which the caller locates, for an unknown tag or an empty token that is
    tagged, or any empty token in strict mode. MasakhaNER 2.0 Xhosa has two O-tagged empty
    tokens: they carry no text and no label, so they are dropped and counted.
    """
    problem = check_tag(tag, types, prefixes)
    if problem:
        raise ValueError(problem)
    if not token:
        if strict or tag != "O":
            raise ValueError(f"empty token tagged {tag!r}")
        return False
    return True


def read_conll(
    path: Path | str,
    *,
    separator: str | None,
    types: tuple[str, ...] | None,
    token_prefix: str | None = None,
    strict: bool = False,
    columns: int | None = 2,
    token_column: int = 0,
    tag_column: int = -1,
    docstart: bool = False,
    any_scheme: bool = False,
) -> tuple[list[Sentence], ReadReport]:
    """Read one file of token-per-line lines, sentences separated by blank lines.

    Args:
        path: the file.
        separator: ``"\\t"`` (PAN-X, Rahimi), ``" "`` (MasakhaNER: exactly one space), or None:
            tabs if the file's first line has one, else runs of whitespace.
        types: allowed entity types (any other tag is an error); None allows any type.
        token_prefix: a prefix every token must carry and that is stripped (``"en:"``).
        strict: reject IOB2 violations instead of repairing them.
        columns: columns every line has; None: as many as the first line has (at least 2).
        token_column, tag_column: which column holds the token and which the tag (0-based;
            negative counts from the end: -1 is the last).
        docstart: skip lines whose first column is ``-DOCSTART-`` (counted), each ending a sentence.
        any_scheme: accept IOB1 and BIOES as well as IOB2 (:func:`~polycompress.tags.scheme_of`
            names the file's scheme) and convert them to IOB2, counting the changed tags.

    Returns:
        The sentences (IOB2 tags) and a :class:`ReadReport` of every repair, conversion and skip.
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusFormatError(path, None, "file not found")
    raw = path.read_bytes()
    if not raw.strip():
        raise CorpusFormatError(path, None, "empty file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise CorpusFormatError(path, line, f"not UTF-8 ({err.reason} at byte {err.start})") from None

    report = ReadReport(path=str(path))
    # (tokens, tags, first line) as read; tags are made IOB2 once the file's scheme is known
    raw_sentences: list[tuple[list[str], list[str], int]] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = 0

    def close_sentence() -> None:
        nonlocal tokens, tags
        if tokens:
            raw_sentences.append((tokens, tags, start))
        tokens, tags = [], []

    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline does not open an empty last line
    previous_blank = True
    width, width_line = columns, 0
    for number, line in enumerate(lines, start=1):
        if line.endswith("\r"):
            raise CorpusFormatError(path, number, "Windows line ending (CRLF); convert the file to LF")
        if not line.strip():
            if previous_blank:
                report.extra_blank_lines += 1
            close_sentence()
            previous_blank = True
            continue
        previous_blank = False
        if separator is None:  # decided by the first line: tokens may hold spaces in a tab file
            separator = "\t" if "\t" in line else ""
        parts = line.split(separator) if separator else line.split()
        if docstart and parts[0].strip() == DOCSTART:  # any width: some files write it alone
            report.docstart_lines += 1
            close_sentence()
            continue
        if width is None:
            width, width_line = len(parts), number
            if width < 2:
                raise CorpusFormatError(path, number, f"expected at least 2 columns (token and tag), found 1: {line!r}")
            for name, index in (("token", token_column), ("tag", tag_column)):
                if not -width <= index < width:
                    raise CorpusFormatError(path, number, f"{name} column {index} does not exist: "
                                                          f"the line has {width} columns: {line!r}")
            if token_column % width == tag_column % width:
                raise CorpusFormatError(path, number, f"token and tag column are the same column ({token_column})")
        if len(parts) != width:
            if columns is not None:
                how = repr(separator)
            else:
                how = f"{SEPARATOR_NAMES[separator or None]} (as on line {width_line})"
            raise CorpusFormatError(path, number, f"expected {width} columns separated by {how}, found {len(parts)}: {line!r}")
        token, tag = parts[token_column], parts[tag_column]
        try:
            keep = check_token(token, tag, types, strict, prefixes="BIES" if any_scheme else "BI")
        except ValueError as err:
            raise CorpusFormatError(path, number, str(err)) from None
        if not keep:
            report.empty_tokens_dropped += 1
            continue
        if token_prefix is not None:
            if not token.startswith(token_prefix):
                raise CorpusFormatError(path, number, f"token {token!r} lacks the prefix {token_prefix!r}")
            token = token[len(token_prefix):]
        if not tokens:
            start = number
        tokens.append(token)
        tags.append(tag)
    close_sentence()
    if not raw_sentences:
        raise CorpusFormatError(path, None, "no sentences")
    report.columns = width or 2

    if any_scheme:
        # one scheme per file: read over all sentences (an O between them keeps them apart)
        report.scheme = scheme_of([t for _, sent_tags, _ in raw_sentences for t in (*sent_tags, "O")])
    sentences = []
    for sent_tokens, sent_tags, first in raw_sentences:
        if report.scheme in ("IOB1", "BIOES"):
            fixed, n_changed = to_iob2(sent_tags)
            report.iob2_converted += n_changed
        else:
            fixed, n_bad = repair_iob2(sent_tags)
            if n_bad:
                if strict:
                    raise CorpusFormatError(path, first, "IOB2 violation (I-X not continuing an X mention)")
                report.iob2_repaired += n_bad
                report.repaired_lines.append(first)
        sentences.append(Sentence(tuple(sent_tokens), tuple(fixed), first))
    report.sentences = len(sentences)
    return sentences, report
