"""Load traces from files and folders: walk, read (.gz transparently), detect, parse, and report what failed.

Contract:
- `load_traces(paths, format=None, strict=False) -> LoadResult(traces, failures, skipped)`. A folder is walked
  recursively in sorted order (names starting with "." are ignored). Every file ends up in exactly one place:
  it yields traces, or a `LoadFailure` (path, reason, and the record for multi-trace files), or a `SkippedFile`
  (path and why it is not a trace: a .md/.csv/... extension, or a recognised non-trace document such as a label
  file or a scenario list, or a FIFO, device or socket: only regular files are opened). One bad file or record
  never stops the others. Symlinked folders are followed (a link back into a folder already read is listed as
  skipped).
- Sizes are bounded: at most `max_trace_mb` per JSON document or JSON line is read, also after decompressing
  .gz (streamed), so a gzip bomb costs at most that much memory and fails with a reason.
- Encodings: UTF-8 (a byte-order mark is ignored, also on line 1 of JSON lines), UTF-16 (decoded). A bad byte
  in a JSON lines file fails its own line, wherever it is.
- Failure reasons a user sees: empty file, binary data, not UTF-8 text, truncated JSON, malformed JSON (with line
  and column), unknown format (with the keys found and the --format hint), empty trajectory, or the loader's own
  TraceLoadError message naming the field. A bug in a loader (any other exception) is recorded as an "internal
  error" failure for that file, not raised, unless TRAJFM_DEBUG is set. `strict=True` raises `TraceLoadError` after loading when anything
  failed.
- `format` forces one loader for every file (detection is skipped; extension-based skipping still applies to
  folders walked, not to files named explicitly).
- Trace ids are the file path relative to the root the user named, prefixed with the root's name (a file named
  directly is its own name), plus `#<record>` in multi-trace files; duplicates across roots get `~2`, `~3`.
- JSON files are read once; .jsonl/.ndjson files are streamed line by line. A JSON document that is a list of
  trace records is split into records and each is parsed (and may fail) on its own.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from trajfm.errors import TraceLoadError, UsageError
from trajfm.traces import detect as _detect
from trajfm.traces._common import Source
from trajfm.traces.fields import strip_trailing_commas
from trajfm.traces.format import MIN_FIT, WEAK_FIT
from trajfm.traces.model import Trace
from trajfm.traces.quality import annotate
from trajfm.traces.reading import (
    LINE_TOO_LONG,
    NotRegularFile,
    TooLarge,
    capped_lines,
    gunzip_capped,
    limit_bytes,
    looks_binary,
    open_raw,
    plain_size,
    read_capped,
    sniff_encoding,
    special_kind,
    too_large_reason,
)

SKIP_EXTENSIONS = frozenset(
    [
        ".md",
        ".markdown",
        ".rst",
        ".csv",
        ".tsv",
        ".html",
        ".htm",
        ".css",
        ".js",
        ".py",
        ".ipynb",
        ".yaml",
        ".yml",
        ".toml",
        ".ini",
        ".cfg",
        ".lock",
        ".sh",
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".svg",
        ".pdf",
        ".parquet",
        ".arrow",
        ".feather",
        ".pkl",
        ".pickle",
        ".npy",
        ".npz",
        ".zip",
        ".tar",
        ".whl",
        ".xlsx",
        ".xls",
        ".docx",
        ".pt",
        ".bin",
        ".safetensors",
    ]
)
# Documentation files that often sit in a traces folder without an extension.
DOC_NAMES = frozenset(
    {"readme", "license", "licence", "copying", "notice", "authors", "changelog", "changes", "contributing",
     "makefile", "dockerfile", "manifest", "todo", "notes"}
)  # fmt: skip
TEXT_LOG_EXTENSIONS = frozenset({".txt", ".log"})
JSONL_EXTENSIONS = frozenset({".jsonl", ".ndjson"})
_SNIFF_BYTES = 8192
STRONG_TEXT_FIT = 0.8  # a text file without a .txt/.log extension is read only when a format recognises it this well


@dataclass(frozen=True, slots=True)
class LoadFailure:
    """A file (or one record of a multi-trace file) that could not be loaded, and why."""

    path: str
    reason: str
    record: int | str | None = None

    def __str__(self) -> str:
        where = self.path if self.record is None else f"{self.path} (record {self.record})"
        return f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file that is not a trace (documentation, a table, a label file), with the reason it was skipped."""

    path: str
    note: str


@dataclass(slots=True)
class FileOutcome:
    path: str
    traces: list[Trace] = field(default_factory=list)
    failures: list[LoadFailure] = field(default_factory=list)
    skipped: SkippedFile | None = None


@dataclass(slots=True)
class LoadResult:
    traces: list[Trace] = field(default_factory=list)
    failures: list[LoadFailure] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    files: int = 0


# ---- walking ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    path: Path
    rel: str
    explicit: bool  # named by the user, not found by walking a folder


def _targets(paths: Iterable[str | Path]) -> Iterator[_Target | LoadFailure | SkippedFile]:
    for raw in paths:
        root = Path(raw)
        kind = special_kind(root)
        if root.is_file():
            yield _Target(root, root.name, True)
        elif root.is_dir():
            yield from _walk(root)
        elif kind is not None:
            yield SkippedFile(str(root), f"{kind}, not a regular file: only regular files are read")
        elif root.is_symlink():
            yield LoadFailure(str(root), f"broken symbolic link (points to {os.readlink(root)})")
        else:
            yield LoadFailure(str(root), "no such file or folder")


def _walk(root: Path) -> Iterator[_Target | LoadFailure | SkippedFile]:
    """Files under `root` in sorted order (a folder's files before its subfolders); symlinked folders are followed
    once (a loop is reported, not walked). Directory entries say whether a name is a regular file without a
    stat call per file; only what is not (a FIFO, a device, a broken link) is looked at further."""
    base = root.resolve().name or "root"
    here = os.stat(root)
    seen: dict[tuple[int, int], str] = {(here.st_dev, here.st_ino): str(root)}
    yield from _walk_folder(str(root), root, "", base, seen)


def _walk_folder(
    dirpath: str, folder: Path, rel_dir: str, base: str, seen: dict[tuple[int, int], str]
) -> Iterator[_Target | LoadFailure | SkippedFile]:
    try:
        with os.scandir(dirpath) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return  # an unreadable folder is passed over, as os.walk does
    subfolders: list[os.DirEntry[str]] = []
    files: list[os.DirEntry[str]] = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()  # follows symlinks
        except OSError:
            is_dir = False
        (subfolders if is_dir else files).append(entry)
    keep = []
    for entry in subfolders:
        if entry.name == "__pycache__":
            continue
        try:
            st = os.stat(entry.path)
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:  # a symlink back into a folder already walked: following it would never end
            yield SkippedFile(entry.path, f"symbolic link to a folder already read ({seen[key]}); not read twice")
            continue
        seen[key] = entry.path
        keep.append(entry)
    prefix = f"{base}/{rel_dir}" if rel_dir else base
    for entry in files:
        path = folder / entry.name
        try:
            regular = entry.is_file()  # follows symlinks; no stat for a plain file
        except OSError:
            regular = False
        kind = None if regular else special_kind(path)
        if kind is not None:
            yield SkippedFile(str(path), f"{kind}, not a regular file: only regular files are read")
        else:
            yield _Target(path, f"{prefix}/{entry.name}", False)
    for entry in keep:
        sub_rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
        yield from _walk_folder(entry.path, folder / entry.name, sub_rel, base, seen)


def _suffixes(path: Path) -> tuple[str, bool]:
    """(the extension that tells the content, whether the file is gzip-compressed by name)."""
    name = path.name.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    dot = name.rfind(".")
    return (name[dot:] if dot > 0 else ""), gz


# ---- reading ---------------------------------------------------------------------------------------------------


def _decode_error(data: bytes, exc: Exception) -> str:
    pos = getattr(exc, "pos", None)
    msg = str(getattr(exc, "msg", "") or exc)
    # A string still open at the end, or an error at the very end, means the document was cut off.
    if msg.startswith("Unterminated string") or (isinstance(pos, int) and pos >= len(data.rstrip()) - 1):
        return f"truncated JSON: the document ends before it is complete (at byte {len(data)}); is the file cut off?"
    line = getattr(exc, "lineno", None)
    col = getattr(exc, "colno", None)
    where = f" at line {line}, column {col}" if line else ""
    return f"malformed JSON{where}: {getattr(exc, 'msg', None) or exc}"


def decode_json(data: bytes) -> Any:
    """Decode JSON fast, falling back to the stdlib (NaN, huge integers) and to trailing-comma repair.

    Raises ValueError with a user-facing reason.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as fast_exc:
        first: Exception = fast_exc
    text = data.decode("utf-8", errors="strict")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        first = exc
    except RecursionError:
        raise ValueError("JSON nested too deeply to read") from None
    try:
        return json.loads(strip_trailing_commas(text))
    except (json.JSONDecodeError, RecursionError):
        raise ValueError(_decode_error(data, first)) from None


def concatenated_json(data: bytes) -> list[Any] | None:
    """JSON objects written one after another (not one per line); None unless the whole file is two or more."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
        if pos >= end:
            break
        try:
            doc, pos = decoder.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError):
            return None
        docs.append(doc)
    return docs if len(docs) >= 2 else None


def _check_text(head: bytes) -> str | None:
    if b"\x00" in head:
        return "binary data, not a text trace file"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the sniff boundary is fine; anything earlier is not UTF-8.
        if exc.start < len(head) - 4:
            return "not UTF-8 text (binary or another encoding)"
    return None


# ---- parsing ---------------------------------------------------------------------------------------------------


def _load_as(
    name: str, doc: Any, source: Source, out: FileOutcome, *, fit: float, note: str | None = None
) -> None:
    """Parse `doc` with the format `name` and mark each trace with its fit and loading-quality warnings."""
    fmt = _detect.get(name)

    def run() -> list[Trace]:
        traces = fmt.load(doc, source)
        for t in traces:
            annotate(t, fmt, fit, note)
        return traces

    _guard(run, source, out)


def _load_forced(name: str, doc: Any, source: Source, out: FileOutcome) -> None:
    """A document the user forced into a format: refused as misread when it does not fit at all."""
    fit, misread = _detect.forced_misread(name, doc)
    if misread is not None:
        note = _detect.non_trace_note(doc) if fit < MIN_FIT else None
        if note is not None:  # a label file beside the traces is skipped, forced format or not
            out.skipped = SkippedFile(source.path, f"{note}, not a trace")
            return
        out.failures.append(LoadFailure(source.path, misread, source.record))
        return
    _load_as(name, doc, source, out, fit=fit)


def _parse_document(doc: Any, source: Source, forced: str | None, out: FileOutcome) -> None:
    """Parse one decoded document into `out`, splitting lists of trace records into separately-failing records."""
    if forced is not None:
        if (
            isinstance(doc, list)
            and doc
            and not _detect.get(forced).whole_list(doc)
            and _detect.whole_list_format(doc) is None  # one trace of another format: refused as a whole
        ):
            for n, rec in enumerate(doc):
                _load_forced(forced, rec, source.with_record(n), out)
        else:
            _load_forced(forced, doc, source, out)
        return
    if isinstance(doc, list) and doc:
        whole = _detect.whole_list_format(doc)
        if whole is None:
            if _detect.detect(doc[0]) is not None:
                _parse_records(doc, source, out)
                return
        else:
            det = _detect.detect_doc(doc)
            _load_as(det.name or whole, doc, source, out, fit=det.score, note=det.note)
            return
    det = _detect.detect_doc(doc)
    if det.name is not None:
        _load_as(det.name, doc, source, out, fit=det.score, note=det.note)
        return
    note = _detect.non_trace_note(doc)
    if note is not None:
        out.skipped = SkippedFile(source.path, f"{note}, not a trace")
        return
    out.failures.append(LoadFailure(source.path, _unknown_reason(doc, det), source.record))


def _parse_records(records: list[Any], source: Source, out: FileOutcome) -> None:
    for n, rec in enumerate(records):
        rec_source = source.with_record(n)
        det = _detect.detect_doc(rec)
        if det.name is None:
            out.failures.append(LoadFailure(source.path, _unknown_reason(rec, det), n))
            continue
        _load_as(det.name, rec, rec_source, out, fit=det.score, note=det.note)


def _guard(parse: Callable[[], list[Trace]], source: Source, out: FileOutcome) -> None:
    try:
        out.traces.extend(parse())
    except TraceLoadError as exc:
        out.failures.append(LoadFailure(source.path, exc.reason, source.record))
    except RecursionError:
        out.failures.append(LoadFailure(source.path, "structure nested too deeply to read", source.record))
    except Exception as exc:  # noqa: BLE001 - a loader bug must not kill the run; it is reported, not hidden
        if os.environ.get("TRAJFM_DEBUG"):
            raise
        reason = (
            f"internal error in the loader ({type(exc).__name__}: {exc}); this is a trajfm bug, please report it "
            "with the file (TRAJFM_DEBUG=1 shows the traceback)"
        )
        out.failures.append(LoadFailure(source.path, reason, source.record))


def _unknown_reason(doc: Any, det: _detect.Detection | None = None) -> str:
    if isinstance(doc, dict):
        keys = ", ".join(list(doc)[:8]) or "none"
        shape = f"an object with keys: {keys}"
    elif isinstance(doc, list):
        shape = f"a list of {len(doc)} items" if doc else "an empty list"
    else:
        shape = f"a JSON {type(doc).__name__}"
    names = _detect.choices()
    closest = ""
    if det is not None and det.runner_up is not None and det.runner_up_score > 0:
        closest = f"; closest: {det.runner_up} (fit {det.runner_up_score:.2f})"
    return f"unknown format ({shape}{closest}); if it is a trace, name its format with --format ({names})"


def _fits(doc: Any, forced: str | None) -> bool:
    """Whether some format (or the forced one) fits the document at all."""
    if forced is None:
        return _detect.detect(doc) is not None
    return _detect.get(forced).score(doc) >= MIN_FIT


def _jsonl_records(
    lines: Iterable[bytes | object], source: Source, out: FileOutcome, limit: int | None = None
) -> Iterator[tuple[int, Any]]:
    """Decoded JSONL records with their 0-based line numbers; bad lines become failures as they are met."""
    for n, line in enumerate(lines):
        if line is LINE_TOO_LONG:
            reason = too_large_reason(limit or 0, what="the line")
            out.failures.append(LoadFailure(source.path, f"line {n + 1}: {reason}", n))
            continue
        assert isinstance(line, bytes)
        if n == 0 and line.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark belongs to no record
            line = line[3:]
        if not line.strip():
            continue
        try:
            yield n, decode_json(line)
        except UnicodeDecodeError as exc:
            reason = f"not UTF-8 text (a bad byte at column {exc.start + 1})"
            out.failures.append(LoadFailure(source.path, f"line {n + 1}: {reason}", n))
        except ValueError as exc:
            out.failures.append(LoadFailure(source.path, f"line {n + 1}: {exc}", n))


def _parse_jsonl(
    records: Iterator[tuple[int, Any]], source: Source, forced: str | None, out: FileOutcome
) -> None:
    """One trace per line, streamed; except files of spans or single chat messages, which are one trace."""
    first = next(records, None)
    if first is None:
        if not out.failures:
            out.failures.append(LoadFailure(source.path, "empty file: no JSON lines"))
        return
    doc0 = first[1]
    candidates = [forced] if forced is not None else list(_detect.registry().formats)
    part_of = next((name for name in candidates if _detect.get(name).is_part(doc0)), None)
    if part_of is not None:
        rest = list(records)
        docs = [doc0, *(d for _, d in rest)]
        part = _detect.get(part_of)
        if all(part.is_part(d) for d in docs):
            # One trace per file: spans or single messages, one per line.
            if forced is not None:
                _load_forced(forced, docs, source, out)
            else:
                det = _detect.detect_doc(docs)
                _load_as(det.name or part_of, docs, source, out, fit=det.score, note=det.note)
            return
        records = iter(rest)
    elif not _fits(doc0, forced):
        note = _detect.non_trace_note(doc0)
        if note is not None:
            out.skipped = SkippedFile(source.path, f"JSON lines of {note}, not a trace")
            return
    _parse_document(doc0, source.with_record(first[0]), forced, out)
    for n, doc in records:
        _parse_document(doc, source.with_record(n), forced, out)


def load_file(
    target: Path,
    rel: str,
    *,
    forced: str | None = None,
    explicit: bool = True,
    max_trace_mb: float | None = None,
) -> FileOutcome:
    """Load one file. Never raises for bad content: everything goes into the outcome.

    At most `max_trace_mb` (default `reading.DEFAULT_MAX_TRACE_MB`) of content is read per JSON document or per
    JSON line, after decompression; a larger file or line is a failure, read no further than the limit."""
    path = str(target)
    out = FileOutcome(path)
    source = Source(path, rel)
    ext, _ = _suffixes(target)
    if ext in SKIP_EXTENSIONS and (forced is None or not explicit):
        out.skipped = SkippedFile(path, f"not a trace file ({ext})")
        return out
    if not ext and target.name.lower().removesuffix(".gz") in DOC_NAMES and (forced is None or not explicit):
        out.skipped = SkippedFile(path, f"documentation ({target.name}), not a trace")
        return out
    limit = limit_bytes(max_trace_mb)
    compressed = False
    try:
        raw, compressed = open_raw(target)
        with raw:  # a GzipFile around it needs no closing of its own: it does not own `raw`
            fh: IO[bytes] = raw
            whole: bytes | None = None
            if compressed and ext not in JSONL_EXTENSIONS:
                # One document: decompress it whole (bounded) with zlib, much faster than GzipFile reads.
                whole = gunzip_capped(raw, limit)
                head = whole[:_SNIFF_BYTES]
            else:
                if compressed:
                    fh = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
                size = plain_size(fh)
                if size is not None and size > limit and ext not in JSONL_EXTENSIONS:  # known without reading it
                    out.failures.append(LoadFailure(path, too_large_reason(limit)))
                    return out
                head = fh.read(_SNIFF_BYTES)
            if not head:
                out.failures.append(LoadFailure(path, "empty file"))
                return out
            encoding = sniff_encoding(head)
            if encoding == "utf-32":
                out.failures.append(
                    LoadFailure(path, "UTF-32 text, which trajfm does not read; save it as UTF-8")
                )
                return out
            if encoding is None and ext in JSONL_EXTENSIONS:
                if looks_binary(head):
                    out.failures.append(LoadFailure(path, "binary data, not a text trace file"))
                    return out
                fh.seek(0)  # bad bytes further on fail their own line only, wherever they are
                _parse_jsonl(_jsonl_records(capped_lines(fh, limit), source, out, limit), source, forced, out)
                return out
            if encoding is None:
                bad = _check_text(head)
                if bad:
                    out.failures.append(LoadFailure(path, bad))
                    return out
            data = whole if whole is not None else head + read_capped(fh, limit - len(head))
    except TooLarge:
        out.failures.append(LoadFailure(path, too_large_reason(limit, compressed=compressed)))
        return out
    except NotRegularFile as exc:
        out.skipped = SkippedFile(path, f"{exc}: only regular files are read")
        return out
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        out.failures.append(LoadFailure(path, f"cannot read file: {exc}"))
        return out
    if encoding is not None:
        try:  # UTF-16 (Windows editors, PowerShell redirection): decode it rather than call it binary
            data = data.decode(encoding).encode("utf-8")
        except UnicodeDecodeError:
            out.failures.append(
                LoadFailure(path, f"looks like {encoding.upper()} text but does not decode as it")
            )
            return out
        if ext in JSONL_EXTENSIONS:
            lines = data.removeprefix(b"\xef\xbb\xbf").splitlines()
            _parse_jsonl(_jsonl_records(iter(lines), source, out, limit), source, forced, out)
            return out
    _parse_bytes(data, source, ext, forced, out)
    return out


def _parse_bytes(data: bytes, source: Source, ext: str, forced: str | None, out: FileOutcome) -> None:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    stripped = data.lstrip()
    if not stripped:
        out.failures.append(LoadFailure(source.path, "empty file"))
        return
    if stripped[:1] in (b"{", b"["):
        try:
            doc = decode_json(data)
        except UnicodeDecodeError:
            out.failures.append(LoadFailure(source.path, "not UTF-8 text (binary or another encoding)"))
            return
        except ValueError as exc:
            # Several JSON objects one per line in a file without a .jsonl extension.
            lines = data.splitlines()
            if len(lines) > 1 and stripped[:1] == b"{":
                try:
                    first = decode_json(lines[0])
                except (ValueError, UnicodeDecodeError):
                    first = None
                if isinstance(first, dict):
                    _parse_jsonl(_jsonl_records(lines, source, out), source, forced, out)
                    return
                # Pretty-printed objects one after another (an OpenTelemetry console exporter written to a file).
                docs = concatenated_json(data)
                if docs is not None:
                    _parse_jsonl(iter(enumerate(docs)), source, forced, out)
                    return
            out.failures.append(LoadFailure(source.path, str(exc)))
            return
        _parse_document(doc, source, forced, out)
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        out.failures.append(LoadFailure(source.path, "not UTF-8 text (binary or another encoding)"))
        return
    if forced is not None:
        fit, misread = _detect.forced_misread(forced, text, text=True)
        if misread is not None:
            out.failures.append(LoadFailure(source.path, misread))
        else:
            _load_as(forced, text, source, out, fit=fit)
        return
    det = _detect.detect_text(text)
    if ext in TEXT_LOG_EXTENSIONS:
        if det.name is None or det.score < WEAK_FIT:
            out.skipped = SkippedFile(
                source.path,
                "plain text without speaker turns (notes?), not a trace; to read it as one log use --format mast",
            )
            return
        _load_as(det.name, text, source, out, fit=det.score, note=det.note)
        return
    if det.name is not None and det.score >= STRONG_TEXT_FIT:
        # A log that names its own shape (an AutoGen console) is read whatever its extension.
        _load_as(det.name, text, source, out, fit=det.score, note=det.note)
        return
    out.failures.append(
        LoadFailure(
            source.path,
            "unknown format: not JSON; raw text logs are read from .txt/.log files or with --format mast",
        )
    )


# ---- public API ------------------------------------------------------------------------------------------------


def iter_load(
    paths: Iterable[str | Path],
    format: str | None = None,  # noqa: A002
    *,
    max_trace_mb: float | None = None,
) -> Iterator[FileOutcome]:
    """Load file by file (for streaming consumers); see `load_traces`."""
    if format is not None:
        _detect.get(format)  # unknown names are a usage error before any work
    check_max_trace_mb(max_trace_mb)
    for target in _targets(paths):
        if isinstance(target, LoadFailure):
            yield FileOutcome(target.path, failures=[target])
            continue
        if isinstance(target, SkippedFile):
            yield FileOutcome(target.path, skipped=target)
            continue
        yield load_file(
            target.path, target.rel, forced=format, explicit=target.explicit, max_trace_mb=max_trace_mb
        )


def check_max_trace_mb(max_trace_mb: float | None) -> None:
    if max_trace_mb is not None and not max_trace_mb > 0:
        raise UsageError(f"--max-trace-mb must be a positive number of megabytes, got {max_trace_mb}")


def collect_targets(paths: Iterable[str | Path]) -> list[Path]:
    """The files `load_traces` would read (for progress bars and counts)."""
    return [t.path for t in _targets(paths) if isinstance(t, _Target)]


def plan_targets(paths: Iterable[str | Path]) -> tuple[list[tuple[Path, str, bool]], list[LoadFailure]]:
    """What `load_traces` would read, in its order, as (path, rel, explicit) for `load_file`, and the inputs
    that do not exist. Lets another process load file by file exactly as `load_traces` does (`--engine ray`)."""
    files: list[tuple[Path, str, bool]] = []
    missing: list[LoadFailure] = []
    for t in _targets(paths):
        if isinstance(t, LoadFailure):
            missing.append(t)
        elif isinstance(t, SkippedFile):
            continue  # not a trace (a README, a label table): nothing to load
        else:
            files.append((t.path, t.rel, t.explicit))
    return files, missing


def load_traces(
    paths: Iterable[str | Path] | str | Path,
    format: str | None = None,  # noqa: A002 - the CLI's option name
    strict: bool = False,
    *,
    on_file: Callable[[str], None] | None = None,
    fmt: str | None = None,
    max_trace_mb: float | None = None,
) -> LoadResult:
    """Load every trace under `paths` (files or folders). See the module docstring for the contract.

    `on_file(path)` is called after each file (progress bars); `fmt` is an alias of `format`; `max_trace_mb`
    bounds what is read per document or JSON line (see `load_file`).
    """
    if fmt is not None:
        format = fmt  # noqa: A001
    if isinstance(paths, str | Path):
        paths = [paths]
    result = LoadResult()
    seen: dict[str, int] = {}
    for outcome in iter_load(list(paths), format, max_trace_mb=max_trace_mb):
        result.files += 1
        for trace in outcome.traces:
            n = seen.get(trace.trace_id, 0) + 1
            seen[trace.trace_id] = n
            if n > 1:
                trace.trace_id = f"{trace.trace_id}~{n}"
            result.traces.append(trace)
        result.failures.extend(outcome.failures)
        if outcome.skipped is not None:
            result.skipped.append(outcome.skipped)
        if on_file is not None:
            on_file(outcome.path)
    if strict and result.failures:
        first = result.failures[0]
        more = f" (and {len(result.failures) - 1} more)" if len(result.failures) > 1 else ""
        raise TraceLoadError(f"{first.reason}{more}; fix or remove the file, or run without --strict",
                             path=first.path)  # fmt: skip
    return result
