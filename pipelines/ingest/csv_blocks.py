"""Cut a big CSV file into blocks of whole records, so that it is parsed a block at a time.

A block ends just after a newline outside quotes: an even number of `"` since the block
start (RFC 4180 quoting, where an escaped quote `""` counts twice). A quoted field spanning
lines therefore never straddles two blocks. Each block is handed out with the file's header
record in front of it, so the parser sees a small CSV file of its own; `line_shift` turns
the line numbers counted in that small file into the big file's line numbers.

A file no bigger than one block is handed out whole (header included, shift 0), exactly as
a file was read before blocks existed. Limit: a stray quote inside an unquoted field (not
RFC 4180) flips the parity; the block then grows until the parity is even again, at worst
to the end of the file, so memory is bounded only for well-formed quoting.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

SAMPLE_BYTES = 1 << 20  # enough lines to estimate the bytes per record of a file
MAX_BLOCK_BYTES = 128 << 20  # long lines: a block is bounded in bytes before rows
QUOTE, NL = b'"', b"\n"


@dataclass(frozen=True)
class CsvBlock:
    data: bytes  # a CSV text of its own: the header record, then whole records
    line_shift: int  # file line = line counted in `data` + line_shift
    byte_shift: int  # file byte offset = offset in `data` + byte_shift (past the header)


def csv_blocks(path: Path, rows_per_block: int) -> Iterator[CsvBlock]:
    """The file as blocks of about `rows_per_block` records each (sized in bytes from the
    mean line length of its first MiB)."""
    with path.open("rb") as fh:
        buf = fh.read(SAMPLE_BYTES)
        per_line = len(buf) / max(1, buf.count(NL))
        block_bytes = min(MAX_BLOCK_BYTES, max(1, int(rows_per_block * per_line)))
        buf += _read_upto(fh, block_bytes - len(buf))
        header_end = record_end(buf)
        while header_end < 0 and (more := fh.read(block_bytes)):
            buf += more
            header_end = record_end(buf)
        tail = fh.read(1)
        if header_end < 0 or (not tail and len(buf) - header_end <= block_bytes):
            yield CsvBlock(buf, 0, 0)  # one block: the whole file, read as before blocks
            return
        yield from _record_blocks(fh, buf[:header_end], buf[header_end:] + tail, block_bytes)


def _record_blocks(fh: BinaryIO, header: bytes, rest: bytes, block_bytes: int
                   ) -> Iterator[CsvBlock]:
    header_lines = header.count(NL)
    lines_before, offset = header_lines, len(header)  # newlines and bytes before `rest`
    eof = False
    while rest:
        if not eof and len(rest) < block_bytes:
            more = _read_upto(fh, block_bytes - len(rest))
            eof, rest = not more, rest + more
            continue
        cut = _cut(rest, block_bytes)
        if cut < 0 and not eof:  # no record ends in the window (a long quoted field)
            more = fh.read(block_bytes)
            eof, rest = not more, rest + more
            continue
        if cut < 0:
            cut = len(rest)  # the last record, without a final newline
        block, rest = rest[:cut], rest[cut:]
        if block.strip(b"\r\n"):  # a run of blank lines holds no record
            yield CsvBlock(header + block, lines_before - header_lines, offset - len(header))
        lines_before += block.count(NL)
        offset += cut
        if not rest and not eof:
            rest = _read_upto(fh, block_bytes)
            eof = not rest


def _cut(buf: bytes, block_bytes: int) -> int:
    """End of the last whole record within the first `block_bytes` of `buf`, widening the
    window while none ends there; -1 if no record ends in `buf` at all."""
    window = block_bytes
    while (cut := record_end(buf, end=window)) < 0 and window < len(buf):
        window *= 2
    return cut


def record_end(buf: bytes, end: int | None = None) -> int:
    """Index just past the first newline of `buf` outside quotes, or with `end` the last
    such newline before `end`; -1 if there is none."""
    if end is None:
        pos = buf.find(NL)
        quotes = buf.count(QUOTE, 0, pos)
        while pos >= 0 and quotes % 2:
            nxt = buf.find(NL, pos + 1)
            quotes += buf.count(QUOTE, pos, nxt) if nxt >= 0 else 0
            pos = nxt
        return pos + 1 if pos >= 0 else -1
    pos = buf.rfind(NL, 0, end)
    quotes = buf.count(QUOTE, 0, pos) if pos >= 0 else 0
    while pos >= 0 and quotes % 2:
        prev = buf.rfind(NL, 0, pos)
        quotes -= buf.count(QUOTE, prev + 1, pos)
        pos = prev
    return pos + 1 if pos >= 0 else -1


def _read_upto(fh: BinaryIO, n: int) -> bytes:
    return fh.read(n) if n > 0 else b""
