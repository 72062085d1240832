"""What a CSV file is: its encoding (UTF-8, a byte-order mark, else cp1252 or latin-1, said in
a warning), delimiter, quote and header, read from its first megabyte; and the file's bytes,
decompressed as they are read (.gz, .zst)."""

from __future__ import annotations

import codecs
import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from loopml.core.errors import SourceError

if TYPE_CHECKING:
    from loopml.core.config import FileSource

logger = logging.getLogger("loopml.sources")

DELIMITERS = (",", ";", "\t", "|")
SAMPLE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Dialect:
    encoding: str  # a Python codec; "utf-16" streams are transcoded to UTF-8 first
    delimiter: str
    quote: str | None
    header: bool
    bom: int  # bytes of byte-order mark to skip


def open_stream(path: Path) -> BinaryIO:
    """The file's bytes, decompressed when it ends in .gz or .zst (streamed, never whole)."""
    suffix = path.suffix.lower()
    if suffix in (".gz", ".zst", ".zstd"):
        import pyarrow as pa

        codec = "gzip" if suffix == ".gz" else "zstd"
        return pa.input_stream(str(path), compression=codec)  # type: ignore[return-value]
    return path.open("rb")


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    parts, got = [], 0
    while got < size:
        part = stream.read(size - got)
        if not part:
            break
        parts.append(bytes(part))
        got += len(part)
    return b"".join(parts)


def detect(path: Path, config: FileSource) -> Dialect:
    """Encoding, delimiter, quote and header of a CSV file, from its first megabyte."""
    with open_stream(path) as stream:
        head = _read_exactly(stream, SAMPLE_BYTES)
    encoding, bom = _encoding(head, config.encoding, path)
    text = _decode_sample(head[bom:], encoding, whole=len(head) < SAMPLE_BYTES)
    quote = config.quote_char or None
    if config.delimiter:
        delimiter = config.delimiter
    elif path.name.lower().removesuffix(".gz").removesuffix(".zst").endswith(".tsv"):
        delimiter = "\t"
    else:
        delimiter = _sniff_delimiter(text, quote)
    header = config.header if config.header is not None else _sniff_header(text, delimiter, quote)
    return Dialect(encoding=encoding, delimiter=delimiter, quote=quote, header=header, bom=bom)


def _encoding(head: bytes, configured: str | None, path: Path) -> tuple[str, int]:
    if configured:
        try:
            name = codecs.lookup(configured).name
        except LookupError as exc:
            raise SourceError(
                f"Unknown encoding {configured!r} for {path.name}.",
                hint="Use a Python codec name such as utf-8, cp1252, latin-1 or utf-16.",
            ) from exc
        bom = 3 if name in ("utf-8", "utf-8-sig") and head.startswith(codecs.BOM_UTF8) else 0
        return ("utf-8" if name == "utf-8-sig" else name), bom
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", 3
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", 0  # the decoder reads the mark itself
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < SAMPLE_BYTES)
        return "utf-8", 0
    except UnicodeDecodeError as exc:
        found, at = head[exc.start : exc.start + 1].hex(), exc.start
    fallback = "cp1252"
    try:
        head.decode("cp1252")
    except UnicodeDecodeError:
        fallback = "latin-1"
    logger.warning(
        "%s is not UTF-8 (byte 0x%s at offset %d); reading it as %s. Set encoding in the "
        "source's config if that is wrong.", path.name, found, at, fallback,
    )  # fmt: skip
    return fallback, 0


def _decode_sample(head: bytes, encoding: str, *, whole: bool) -> str:
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    return decoder.decode(head, final=whole)


def _sample_lines(text: str) -> list[str]:
    lines = text.splitlines()
    if lines and not text.endswith(("\n", "\r")) and len(lines) > 1:
        lines = lines[:-1]  # the last line of a sample may be cut
    return [ln for ln in lines[:200] if ln.strip()]


def _sniff_delimiter(text: str, quote: str | None) -> str:
    """The candidate that splits every sample line into the same number (> 1) of fields."""
    lines = _sample_lines(text)
    if not lines:
        return ","
    best, best_score = ",", (0, 0)
    for delim in DELIMITERS:
        counts = [len(split_line(ln, delim, quote)) for ln in lines]
        if max(counts) < 2:
            continue
        mode = max(set(counts), key=counts.count)
        score = (counts.count(mode) * (mode > 1), mode)
        if score > best_score:
            best, best_score = delim, score
    return best


def split_line(line: str, delim: str, quote: str | None) -> list[str]:
    """One line's cells by the csv module (its own split when the quoting is broken)."""
    try:
        if quote:
            return next(csv.reader([line], delimiter=delim, quotechar=quote), [])
        return next(csv.reader([line], delimiter=delim, quoting=csv.QUOTE_NONE), [])
    except csv.Error:
        return line.split(delim)


def _looks_like_value(cell: str) -> bool:
    cell = cell.strip()
    if not cell:
        return False
    try:
        float(cell.replace("_", "x"))
        return True
    except ValueError:
        pass
    return len(cell) >= 8 and cell[:4].isdigit() and cell[4] in "-/." and cell[5:7].isdigit()


def _sniff_header(text: str, delimiter: str, quote: str | None) -> bool:
    """A first row is a header unless one of its cells is a number or a date.

    (A header of numbers, such as years, needs ``header: true`` in the config.)
    """
    lines = _sample_lines(text)
    if not lines:
        return True
    return not any(_looks_like_value(c) for c in split_line(lines[0], delimiter, quote))


csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
