"""Bytes from a trace file or stream: opened once, decompressed, transcoded, bounded.

:func:`open_source` takes what ``load_file`` was given — a path (``str``, ``bytes`` or
``os.PathLike``) or an open binary file — and returns a :class:`Source`, which sniffs the
format from its first bytes (never opening or reading anything twice, so pipes work) and
yields the text as UTF-8 blocks: gzip and zstd are decompressed as they stream (several
members or frames, a damaged or truncated stream keeping what came before), a byte-order mark
is dropped, UTF-16 is transcoded. :func:`line_events` cuts the blocks into runs of complete
lines; a binary file (OTLP protobuf messages) is read from :meth:`Source.binary_blocks`.

Limits bound what a hostile file can cost: ``max_bytes`` (bytes read after decompression)
and ``max_line_bytes`` (the longest line kept; a longer one is skipped without being held
whole in memory). What a limit cut, or damage ended, is said in :attr:`Source.issues`.

>>> import io
>>> src = open_source(io.BytesIO(b'\\xef\\xbb\\xbf{"a": 1}\\n'))
>>> src.kind, b"".join(src.blocks())
('json', b'{"a": 1}\\n')
"""

from __future__ import annotations

import codecs
import io
import os
import stat
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

from xraykit.exceptions import (
    ArgumentError,
    ArgumentTypeError,
    TraceFileNotFoundError,
    TraceParseError,
)

__all__ = [
    "BLOCK_BYTES",
    "MAX_BYTES",
    "MAX_LINE_BYTES",
    "Lines",
    "LongLine",
    "Source",
    "display_name",
    "line_events",
    "open_source",
]

#: Bytes read at a time.
BLOCK_BYTES = 1 << 20
#: The default limit of bytes read from one source, after decompression.
MAX_BYTES = 8 << 30
#: The default limit of one line's length (X-Ray's own responses stay under a few MB a line).
MAX_LINE_BYTES = 64 << 20

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZIP_MAGIC = b"PK\x03\x04"
_ZSTD_READ = 64 << 10  # what the zstd decoder is asked for at a time


def display_name(name: str | bytes) -> str:
    """A file name fit to show: bytes the file system allows but UTF-8 does not are escaped.

    >>> display_name(b"bad\\xff.jsonl")
    'bad\\\\xff.jsonl'
    """
    text = os.fsdecode(name)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _check_limit(value: int | None, name: str) -> int | None:
    if value is not None and (type(value) is not int or value < 1):
        raise ArgumentError(
            f"`{name}` must be a positive number of bytes or None, but {value!r} was passed."
        )
    return value


def open_source(
    source: Any, *, max_bytes: int | None = MAX_BYTES, max_line_bytes: int | None = MAX_LINE_BYTES
) -> Source:
    """Open ``source`` for reading: a path, or a binary file object (read as a stream).

    Raises
    ------
    FileNotFoundError
        When a path does not exist.
    TraceParseError
        When a path is a directory, or not a regular file (a pipe, a device, a socket): such a
        source is read only when given as an open binary file, so that reading it is meant.
    ArgumentTypeError
        When ``source`` is neither a path nor a binary file object.
    """
    _check_limit(max_bytes, "max_bytes")
    _check_limit(max_line_bytes, "max_line_bytes")
    if hasattr(source, "read"):
        if isinstance(source, io.TextIOBase):
            raise ArgumentTypeError(
                "load_file() reads bytes, but a text-mode file was passed; open it in binary "
                "mode (open(path, 'rb')) or pass its path."
            )
        name = getattr(source, "name", None)
        shown = display_name(name) if isinstance(name, str | bytes) else "<stream>"
        return Source(source, Path(shown).name or shown, max_bytes, max_line_bytes, owned=False)
    if not isinstance(source, str | bytes | os.PathLike):
        raise ArgumentTypeError(
            "load_file() takes a path (str, bytes or pathlib.Path) or a binary file object, "
            f"but {type(source).__name__} was passed."
        )
    path = os.fspath(source)
    shown = display_name(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise TraceFileNotFoundError(
            f"No such trace file: {shown!r}. Check the path, or use xraykit.sample_names()."
        ) from None
    name = display_name(os.path.basename(path)) or shown
    if stat.S_ISDIR(info.st_mode):
        raise TraceParseError(
            f"{shown!r} is a directory; pass one trace file (JSON, JSON lines, a daemon "
            "capture, gzip or zstd of these, or a saved TraceSet).",
            source=name,
        )
    if not stat.S_ISREG(info.st_mode):
        kind = (
            "a named pipe"
            if stat.S_ISFIFO(info.st_mode)
            else "a socket"
            if stat.S_ISSOCK(info.st_mode)
            else "a device"
        )
        raise TraceParseError(
            f"{shown!r} is {kind}, not a regular file, so it may never end. To read it as a "
            "stream, pass it open: xraykit.load_file(open(path, 'rb')) (max_bytes bounds what "
            "is read).",
            source=name,
        )
    return Source(open(path, "rb"), name, max_bytes, max_line_bytes, owned=True)


class Source:
    """A trace file or stream, read once: its kind sniffed from the first bytes.

    ``kind`` is ``"json"`` (text, after any decompression) or ``"saved"`` (a zip: a saved
    TraceSet, to open with :attr:`raw`). Use as a context manager; a file it opened is closed
    on exit.
    """

    def __init__(
        self,
        raw: IO[bytes],
        name: str,
        max_bytes: int | None,
        max_line_bytes: int | None,
        owned: bool,
    ) -> None:
        self.raw = raw
        self.name = name
        self.max_bytes = max_bytes
        self.max_line_bytes = max_line_bytes
        self.owned = owned
        #: what stopped the reading early or was skipped, as (location, reason)
        self.issues: list[tuple[str, str]] = []
        #: False when damage or a limit ended the text before its end
        self.complete = True
        self._buffer: bytearray | None = None  # reused for every block read after the first
        first = bytes(self._read_raw())
        while 0 < len(first) < 4:  # a stream may hand out a byte at a time: sniff four
            more = self._read_raw()
            if not more:
                break
            first += bytes(more)
        self._first = first
        self.kind = "saved" if first.startswith(ZIP_MAGIC) else "json"
        self._plain: Iterator[bytes | bytearray] | None = None  # decompressed, limited
        self._peeked: list[bytes] = []  # what head() read of it, given out first

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.owned:
            self.raw.close()

    def _read_raw(self) -> bytes | bytearray:
        """The next block of the source: a buffer that the next read reuses (no allocation
        per block), or new bytes from a stream that cannot read into one."""
        readinto = getattr(self.raw, "readinto", None)
        if readinto is not None:
            if self._buffer is None or len(self._buffer) != BLOCK_BYTES:
                self._buffer = bytearray(BLOCK_BYTES)
            n = readinto(self._buffer)
            if n is None:  # a non-blocking stream with nothing yet
                return b""
            return self._buffer if n == len(self._buffer) else self._buffer[:n]
        data = self.raw.read(BLOCK_BYTES)
        if data is None:  # a non-blocking stream with nothing yet
            return b""
        if not isinstance(data, bytes | bytearray):
            raise ArgumentTypeError(
                f"the file object returned {type(data).__name__} from read(); open it in binary mode."
            )
        return bytes(data)

    def as_file(self) -> IO[bytes]:
        """The source as a file positioned at its start (a stream is read into memory, at most
        ``max_bytes`` of it): for formats that need to seek, like a saved TraceSet."""
        seekable = getattr(self.raw, "seekable", None)
        if callable(seekable) and seekable():
            self.raw.seek(0)
            return self.raw
        data = bytearray()
        for block in self.raw_bytes():
            data += block
            if self.max_bytes is not None and len(data) > self.max_bytes:
                raise TraceParseError(
                    f"{self.name} is a saved TraceSet larger than max_bytes ({self.max_bytes:,} bytes); "
                    "pass max_bytes=None to read it.",
                    source=self.name,
                )
        stream = io.BytesIO(bytes(data))
        stream.name = self.name
        return stream

    def raw_bytes(self) -> Iterator[bytes | bytearray]:
        """The source's bytes as they are (not decompressed), from the start. A block is valid
        until the next one is asked for: keep a copy of what must last."""
        block: bytes | bytearray = self._first
        while block:
            yield block
            block = self._read_raw()

    def _decoded(self) -> Iterator[bytes | bytearray]:
        raw = self.raw_bytes()
        if self._first.startswith(GZIP_MAGIC):
            return self._gunzip(raw)
        if self._first.startswith(ZSTD_MAGIC):
            return self._unzstd(raw)
        return raw

    def _unzstd(self, raw: Iterator[bytes | bytearray]) -> Iterator[bytes]:
        """zstd frames (one after another, with or without their size) as they stream."""
        import pyarrow as pa  # a dependency already (saved TraceSets); loaded when needed

        stream = pa.CompressedInputStream(pa.PythonFile(_BlockFile(raw), mode="r"), "zstd")
        out = bytearray()  # small reads gathered into blocks: damage loses at most one read
        try:
            while True:
                piece = stream.read(_ZSTD_READ)
                if not piece:
                    break
                out += piece
                if len(out) >= BLOCK_BYTES:
                    yield bytes(out)
                    out.clear()
        except (OSError, pa.ArrowException) as exc:
            reason = str(exc).strip() or type(exc).__name__
            if "truncated" in reason.lower():
                self._stop(self.name, "the zstd stream is truncated; kept what came before")
            else:
                self._stop(
                    self.name, f"the zstd stream is damaged ({reason}); kept what came before"
                )
        finally:
            stream.close()
        if out:
            yield bytes(out)

    def _plain_blocks(self) -> Iterator[bytes | bytearray]:
        if self._plain is None:
            self._plain = self._limited(self._decoded())
        return self._plain

    def head(self, size: int) -> bytes:
        """The first ``size`` bytes after decompression (fewer if the source is shorter),
        left in place for :meth:`blocks` or :meth:`binary_blocks`."""
        plain = self._plain_blocks()
        have = sum(len(b) for b in self._peeked)
        while have < size:
            block = next(plain, None)
            if block is None:
                break
            self._peeked.append(bytes(block))  # blocks are reused: keep a copy
            have += len(block)
        return b"".join(self._peeked)[:size]

    def binary_blocks(self) -> Iterator[bytes | bytearray]:
        """The bytes after decompression, as they are (at most ``max_bytes`` of them)."""
        while self._peeked:
            yield self._peeked.pop(0)
        yield from self._plain_blocks()

    def _gunzip(self, raw: Iterator[bytes | bytearray]) -> Iterator[bytes]:
        where = self.name
        inflate = zlib.decompressobj(31)
        for data in raw:
            while data:
                try:
                    out = inflate.decompress(data, BLOCK_BYTES)
                    while True:
                        if out:
                            yield out
                        if not inflate.unconsumed_tail:
                            break
                        out = inflate.decompress(inflate.unconsumed_tail, BLOCK_BYTES)
                except zlib.error as exc:
                    self._stop(where, f"the gzip stream is damaged ({exc}); kept what came before")
                    return
                data = b""
                if inflate.eof:  # one member ended: another may follow
                    rest = inflate.unused_data
                    if rest.startswith(GZIP_MAGIC):
                        inflate, data = zlib.decompressobj(31), rest
                    elif rest.strip(b"\0"):
                        self.issues.append(
                            (
                                where,
                                f"{len(rest)} bytes after the end of the gzip stream were ignored",
                            )
                        )
                        return
        if not inflate.eof:
            self._stop(where, "the gzip stream is truncated; kept what came before")

    def _stop(self, where: str, reason: str) -> None:
        self.issues.append((where, reason))
        self.complete = False

    def blocks(self) -> Iterator[bytes | bytearray]:
        """The text as UTF-8 blocks (at most ``max_bytes`` of it)."""
        blocks = self.binary_blocks()
        first = next(blocks, b"")
        while len(first) < 4:  # the first bytes decide the encoding
            more = next(blocks, b"")
            if not more:
                break
            first = bytes(first) + more
        encoding = _utf16(first)
        if encoding is None:
            if first.startswith(codecs.BOM_UTF8):
                first = first[3:]
            if first:
                yield first
            yield from blocks
            return
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            for block in _chain(first, blocks):
                text = decoder.decode(block)
                if text:
                    yield text.encode("utf-8")
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            self._stop(
                self.name,
                f"the file is UTF-16 ({encoding}) but holds bytes that are not ({exc}); kept what came before",
            )

    def _limited(self, blocks: Iterator[bytes | bytearray]) -> Iterator[bytes | bytearray]:
        if self.max_bytes is None:
            yield from blocks
            return
        left = self.max_bytes
        for block in blocks:
            if len(block) > left:
                if left:
                    yield block[:left]
                self._stop(
                    self.name,
                    f"stopped after {self.max_bytes:,} bytes (max_bytes); the rest was not read. "
                    "Pass max_bytes=None, or a larger number, to read it all.",
                )
                return
            left -= len(block)
            yield block


class _BlockFile(io.RawIOBase):
    """Blocks of bytes read as a file (for a decompressor that reads files)."""

    def __init__(self, blocks: Iterator[bytes | bytearray]) -> None:
        self._blocks = blocks
        self._left = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            block = next(self._blocks, None)
            if block is None:
                return 0
            self._left = memoryview(bytes(block))
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


def _chain(
    first: bytes | bytearray, rest: Iterator[bytes | bytearray]
) -> Iterator[bytes | bytearray]:
    yield first
    yield from rest


def _utf16(head: bytes | bytearray) -> str | None:
    """The UTF-16 codec of a text starting with ``head``, or None (RFC 8259 §8.1: JSON text
    starts with an ASCII character, so its second or first byte is zero in UTF-16)."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if len(head) >= 4 and head[0] and not head[1] and head[2] and not head[3]:
        return "utf-16-le"
    if len(head) >= 4 and not head[0] and head[1] and not head[2] and head[3]:
        return "utf-16-be"
    return None


class Lines(NamedTuple):
    """Complete lines: ``data[start:end]`` (the reader counts them)."""

    data: bytes | bytearray
    start: int
    end: int


class LongLine(NamedTuple):
    """A line longer than the limit, skipped: its length in bytes."""

    length: int


def _pieces(blocks: Iterator[bytes | bytearray], limit: int | None) -> Iterator[bytes | bytearray]:
    """Blocks no longer than ``limit``, so that a line longer than it spans two of them."""
    for block in blocks:
        if limit is None or len(block) <= limit:
            yield block
        else:
            for at in range(0, len(block), limit):
                yield block[at : at + limit]


def line_events(source: Source) -> Iterator[Lines | LongLine]:
    """Cut the source's text into runs of complete lines (and the long lines skipped), in
    order: each event's first line follows the previous event's last.

    A last line without a newline counts, unless damage or a limit cut the text there.

    >>> import io
    >>> [tuple(e) for e in line_events(open_source(io.BytesIO(b"a\\nbb\\nc")))]
    [(b'a\\nbb\\nc', 0, 5), (b'c', 0, 1)]
    """
    limit = source.max_line_bytes
    carry: list[bytes | bytearray] = []
    carried = 0
    skipped: int | None = None  # bytes of a long line skipped so far
    for block in _pieces(source.blocks(), limit):
        start = 0
        if skipped is not None or carry:
            newline = block.find(b"\n")
            if newline < 0:
                if skipped is not None:
                    skipped += len(block)
                else:
                    carry.append(bytes(block))  # blocks are reused: keep a copy
                    carried += len(block)
                    if limit is not None and carried > limit:
                        skipped, carry, carried = carried, [], 0
                continue
            length = (skipped if skipped is not None else carried) + newline
            if skipped is not None or (limit is not None and length > limit):
                yield LongLine(length)
            else:
                line = b"".join([*carry, block[: newline + 1]])
                yield Lines(line, 0, len(line))
            skipped, carry, carried = None, [], 0
            start = newline + 1
        last = block.rfind(b"\n", start)
        if last >= 0:
            yield Lines(block, start, last + 1)
            start = last + 1
        if start < len(block):
            carry, carried = [block[start:]], len(block) - start
            if limit is not None and carried > limit:
                skipped, carry, carried = carried, [], 0
    if skipped is not None:
        yield LongLine(skipped)
    elif carry and source.complete:
        line = b"".join(carry)
        yield Lines(line, 0, len(line))
