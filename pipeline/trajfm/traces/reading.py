"""Reading trace files without hanging or blowing up: only regular files, bounded sizes, known encodings.

Contract:
- `special_kind(path)` names what a path is when it is not a regular file ("a FIFO (named pipe)", "a character
  device", ...) or returns None for a regular file. It only calls stat (following symlinks), which never blocks,
  so a FIFO, /dev/zero or a socket inside a traces folder is listed as skipped instead of opened.
- `open_trace(path)` opens with O_NONBLOCK and checks the opened descriptor is a regular file (a FIFO swapped in
  after the check cannot block either); gzip content (by magic bytes) is decompressed as a stream.
- `read_capped(fh, limit)` reads at most `limit` bytes and raises `TooLarge` past it, so a 1 MB file that inflates
  to 1 GB costs at most `limit` bytes of memory. `gunzip_capped(raw, limit)` does the same for a whole gzip file
  read from its raw (compressed) stream with zlib directly, several times faster than `gzip.GzipFile` on the
  many small files of a trace folder; members, zero padding, CRC and truncation are handled as gzip does. `capped_lines(fh, limit)` yields lines (without the newline) and
  `LINE_TOO_LONG` for a line over the limit, whose rest is skipped in bounded chunks.
- `sniff_encoding(head)` tells UTF-16 (with or without a byte-order mark) and UTF-32 from UTF-8, so such files are
  decoded (UTF-16) or named for what they are instead of being called binary data.
"""

from __future__ import annotations

import gzip
import os
import stat
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

DEFAULT_MAX_TRACE_MB = 100.0
_CHUNK = 1 << 20


class TooLarge(Exception):
    """A file or line is larger than the --max-trace-mb limit (the message is user-facing)."""


class NotRegularFile(OSError):
    """The opened path is not a regular file (a FIFO, device or socket)."""


LINE_TOO_LONG = object()  # yielded by `capped_lines` in place of a line over the limit


def limit_bytes(max_trace_mb: float | None) -> int:
    return int((DEFAULT_MAX_TRACE_MB if max_trace_mb is None else max_trace_mb) * 1_000_000)


def too_large_reason(limit: int, *, what: str = "file", compressed: bool = False) -> str:
    after = " after decompression" if compressed else ""
    return (
        f"{what} is larger than the --max-trace-mb limit of {limit / 1e6:g} MB{after}; raise --max-trace-mb if it "
        "is a real trace, or split the file"
    )


def _kind_name(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def special_kind(path: Path) -> str | None:
    """What `path` is when it is not a regular file (following symlinks), else None; never opens it."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # missing or a broken link: opening it gives the precise error
    kind = _kind_name(mode)
    if kind is not None and os.path.islink(path):
        kind = f"a symbolic link to {kind} ({os.path.realpath(path)})"
    return kind


def open_trace(path: Path) -> tuple[IO[bytes], bool]:
    """(a binary stream of the file's content, whether it is gzip-compressed); see the module docstring."""
    fh, compressed = open_raw(path)
    if compressed:
        return gzip.GzipFile(fileobj=fh, mode="rb"), True  # type: ignore[return-value]
    return fh, False


def open_raw(path: Path) -> tuple[IO[bytes], bool]:
    """(the file's raw byte stream, whether it holds gzip data by its magic bytes); see `open_trace`."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        kind = _kind_name(os.fstat(fd).st_mode)
        if kind is not None:
            raise NotRegularFile(f"{kind}, not a regular file")
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    magic = fh.read(2)
    fh.seek(0)
    return fh, magic == b"\x1f\x8b"


def plain_size(fh: IO[bytes]) -> int | None:
    """The size on disk of an uncompressed stream (None for a gzip stream, whose size is known only by reading)."""
    if isinstance(fh, gzip.GzipFile):
        return None
    try:
        return os.fstat(fh.fileno()).st_size
    except (OSError, ValueError):
        return None


def read_capped(fh: IO[bytes], limit: int) -> bytes:
    """Everything left in `fh`, or `TooLarge` as soon as more than `limit` bytes have been read."""
    parts: list[bytes] = []
    total = 0
    while True:
        block = fh.read(min(_CHUNK, limit + 1 - total))
        if not block:
            return b"".join(parts)
        parts.append(block)
        total += len(block)
        if total > limit:
            raise TooLarge


_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer (CRC and size checked) around deflate data


def gunzip_capped(raw: IO[bytes], limit: int) -> bytes:
    """The decompressed content of the gzip stream `raw` (every member), or `TooLarge` past `limit` bytes.

    Raises `zlib.error` for data that is not gzip and `EOFError` for a stream cut off inside a member."""
    parts: list[bytes] = []
    total = 0
    inflater = zlib.decompressobj(_GZIP_WBITS)
    started = False  # whether the current member has had any input
    while True:
        buf = raw.read(_CHUNK)
        if not buf:
            break
        while buf:
            if not started:
                buf = buf.lstrip(b"\x00")  # zero padding between or after members, as gzip allows
                if not buf:
                    break
                started = True
            piece = inflater.decompress(buf, limit + 1 - total)
            total += len(piece)
            if total > limit:
                raise TooLarge
            parts.append(piece)
            if inflater.eof:  # the member is complete: what follows is the next member (or padding)
                buf = inflater.unused_data
                inflater = zlib.decompressobj(_GZIP_WBITS)
                started = False
            else:
                buf = inflater.unconsumed_tail
    if started:
        raise EOFError("Compressed file ended before the end-of-stream marker was reached")
    return b"".join(parts)


def capped_lines(fh: IO[bytes], limit: int) -> Iterator[bytes | object]:
    """Lines of `fh` without their line ending; `LINE_TOO_LONG` for a line longer than `limit` bytes."""
    while True:
        line = fh.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):  # skip the rest of the line, a bounded chunk at a time
                line = fh.readline(_CHUNK)
            yield LINE_TOO_LONG
            continue
        yield line.rstrip(b"\r\n")


def sniff_encoding(head: bytes) -> str | None:
    """'utf-16' / 'utf-16-le' / 'utf-16-be' for UTF-16 text, 'utf-32' for UTF-32, None for anything else."""
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    sample = head[:512]
    if len(sample) >= 4:
        even, odd = sample[0::2], sample[1::2]
        # ASCII-heavy UTF-16 text has a zero in every other byte (JSON and logs are mostly ASCII).
        if odd.count(0) >= 0.9 * len(odd) and even.count(0) <= 0.1 * len(even):
            return "utf-16-le"
        if even.count(0) >= 0.9 * len(even) and odd.count(0) <= 0.1 * len(odd):
            return "utf-16-be"
    return None


def looks_binary(head: bytes) -> bool:
    """A head that is not text at all (used for JSON lines files, whose bad lines otherwise fail one by one)."""
    if not head:
        return False
    bad = head.count(0)
    text = head.decode("utf-8", errors="replace")
    bad += text.count("\ufffd")
    return bad > max(8, len(head) // 20)
