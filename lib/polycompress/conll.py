"""Read token-per-line NER files (PAN-X tsv, the Rahimi release, MasakhaNER CoNLL).

One reader for all three layouts: they differ only in the column separator and in the
``lang:`` prefix the original WikiANN release puts on every token. Every problem is reported
with the file and line; IOB2 violations are repaired and counted, or rejected in strict mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .tags import check_tag, repair_iob2


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
    iob2_repaired: int = 0
    extra_blank_lines: int = 0
    empty_tokens_dropped: int = 0
    repaired_lines: list[int] = field(default_factory=list)


def check_token(token: str, tag: str, types: tuple[str, ...], strict: bool) -> bool:
    """The per-token rules shared by files and hub rows: False means drop (and count) the token.

    Raises ValueError, which the caller locates, for an unknown tag or an empty token that is
    tagged, or any empty token in strict mode. MasakhaNER 2.0 Xhosa has two O-tagged empty
    tokens: they carry no text and no label, so they are dropped and counted.
    """
    problem = check_tag(tag, types)
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
    separator: str,
    types: tuple[str, ...],
    token_prefix: str | None = None,
    strict: bool = False,
) -> tuple[list[Sentence], ReadReport]:
    """Read one file of ``token<separator>tag`` lines, sentences separated by blank lines.

    Args:
        path: the file.
        separator: ``"\\t"`` (PAN-X, Rahimi) or ``" "`` (MasakhaNER); exactly two columns.
        types: allowed entity types; any other tag is an error.
        token_prefix: a prefix every token must carry and that is stripped (``"en:"``).
        strict: reject IOB2 violations instead of repairing them.
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
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = 0

    def close_sentence() -> None:
        if not tokens:
            return
        fixed, n_bad = repair_iob2(tags)
        if n_bad:
            if strict:
                raise CorpusFormatError(path, start, "IOB2 violation (I-X not continuing an X mention)")
            report.iob2_repaired += n_bad
            report.repaired_lines.append(start)
        sentences.append(Sentence(tuple(tokens), tuple(fixed), start))
        tokens.clear()
        tags.clear()

    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline does not open an empty last line
    previous_blank = True
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
        parts = line.split(separator)
        if len(parts) != 2:
            raise CorpusFormatError(
                path, number, f"expected 2 columns separated by {separator!r}, found {len(parts)}: {line!r}"
            )
        token, tag = parts
        try:
            keep = check_token(token, tag, types, strict)
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
    if not sentences:
        raise CorpusFormatError(path, None, "no sentences")
    report.sentences = len(sentences)
    return sentences, report
