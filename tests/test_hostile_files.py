"""Hostile files in a traces folder: nothing blocks, nothing is read past --max-trace-mb, odd encodings decode.

Each test mixes the bad file with a good trace and checks the good one still loads and the bad one is listed
(as a failure or a skip) with its reason. Loading runs in a thread with a deadline, so a regression that blocks
in open() fails the test instead of hanging the suite.
"""

from __future__ import annotations

import faulthandler
import gzip
import json
import os
import threading
from pathlib import Path

import pytest

from trajfm.runfolder import file_sha256
from trajfm.traces import load_traces
from trajfm.traces.load import LoadResult, collect_targets

GOOD = [{"role": "user", "content": "book a table"}, {"role": "assistant", "content": "done"}]


def _good_line(n: int) -> str:
    return json.dumps(
        {"messages": [{"role": "user", "content": f"task {n}"}, {"role": "assistant", "content": "ok"}]}
    )


def _load(paths: list[Path], deadline_s: float = 60.0, **kw: object) -> LoadResult:
    box: dict[str, object] = {}

    def work() -> None:
        box["result"] = load_traces(paths, **kw)  # type: ignore[arg-type]

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(deadline_s)
    if t.is_alive():  # show where it is stuck
        faulthandler.dump_traceback(all_threads=True)
    assert not t.is_alive(), f"loading did not finish within {deadline_s} s (blocked on a special file?)"
    result = box["result"]
    assert isinstance(result, LoadResult)
    return result


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "traces"
    root.mkdir()
    (root / "good.json").write_text(json.dumps(GOOD))
    return root


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_and_dev_zero_symlink_are_skipped_never_opened_or_hashed(folder: Path) -> None:
    os.mkfifo(folder / "pipe.json")
    (folder / "zero.json").symlink_to("/dev/zero")
    result = _load([folder])
    assert [t.trace_id for t in result.traces] == ["traces/good.json"]
    notes = {Path(s.path).name: s.note for s in result.skipped}
    assert "FIFO" in notes["pipe.json"] and "not a regular file" in notes["pipe.json"]
    assert "character device" in notes["zero.json"] and "/dev/zero" in notes["zero.json"]
    assert not result.failures
    # The manifest hashes what collect_targets lists: only the regular file.
    assert [p.name for p in collect_targets([folder])] == ["good.json"]
    with pytest.raises(OSError, match="not a regular file"):
        file_sha256(folder / "zero.json")


def test_special_file_named_directly_is_skipped(tmp_path: Path) -> None:
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    result = _load([link])
    assert not result.traces and result.skipped and "character device" in result.skipped[0].note


def test_gzip_bomb_is_read_only_up_to_the_cap(folder: Path) -> None:
    # 30 MB of one JSON string compresses to ~30 KB; with a 2 MB cap at most ~2 MB is ever inflated.
    payload = b'{"messages": [{"role": "user", "content": "' + b"a" * 30_000_000 + b'"}]}'
    (folder / "bomb.json.gz").write_bytes(gzip.compress(payload, compresslevel=9))
    (folder / "bomb.jsonl.gz").write_bytes(gzip.compress(payload + b"\n" + _good_line(1).encode()))
    result = _load([folder], max_trace_mb=2)
    reasons = {Path(f.path).name: f.reason for f in result.failures}
    assert "--max-trace-mb limit of 2 MB after decompression" in reasons["bomb.json.gz"]
    assert "line 1" in reasons["bomb.jsonl.gz"] and "--max-trace-mb" in reasons["bomb.jsonl.gz"]
    # The good file and the good line after the oversized one still load.
    assert sorted(t.trace_id for t in result.traces) == ["traces/bomb.jsonl.gz#1", "traces/good.json"]


def test_plain_file_over_the_cap_fails_without_being_read(folder: Path) -> None:
    big = folder / "big.json"
    with open(big, "wb") as fh:
        fh.truncate(3_000_001)  # sparse: costs nothing on disk, and is never read
    result = _load([folder], max_trace_mb=3)
    assert [t.trace_id for t in result.traces] == ["traces/good.json"]
    assert "larger than the --max-trace-mb limit of 3 MB;" in result.failures[0].reason
    under = _load([folder], max_trace_mb=4)  # under the cap it is read (and fails as binary zeros)
    assert "binary" in under.failures[0].reason


def test_jsonl_bad_byte_fails_one_line_wherever_it_is(tmp_path: Path) -> None:
    early = tmp_path / "early.jsonl"
    early.write_bytes(_good_line(0).encode()[:-3] + b"\xff" + b"}]}\n" + _good_line(1).encode() + b"\n")
    late = tmp_path / "late.jsonl"
    late.write_bytes(
        b"".join(_good_line(n).encode() + b"\n" for n in range(300))
        + _good_line(300).encode()[:-3] + b"\xff}]}\n" + _good_line(301).encode() + b"\n"
    )  # fmt: skip
    r1 = _load([early])
    assert [t.trace_id for t in r1.traces] == ["early.jsonl#1"]
    assert len(r1.failures) == 1 and r1.failures[0].record == 0 and "not UTF-8" in r1.failures[0].reason
    r2 = _load([late])
    assert len(r2.traces) == 301 and [f.record for f in r2.failures] == [300]


def test_jsonl_with_utf8_bom_keeps_record_zero(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + _good_line(0).encode() + b"\n" + _good_line(1).encode() + b"\n")
    result = _load([path])
    assert [t.trace_id for t in result.traces] == ["bom.jsonl#0", "bom.jsonl#1"] and not result.failures


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_json_is_decoded(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "wide.json"
    path.write_bytes(json.dumps(GOOD, ensure_ascii=False).encode(encoding))
    result = _load([path])
    assert not result.failures, result.failures
    assert result.traces[0].steps[0].content == "book a table"


def test_utf16_jsonl_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "wide.jsonl"
    path.write_bytes((_good_line(0) + "\r\n" + _good_line(1) + "\r\n").encode("utf-16"))
    result = _load([path])
    assert [t.trace_id for t in result.traces] == ["wide.jsonl#0", "wide.jsonl#1"]


def test_utf32_is_named_not_called_binary(tmp_path: Path) -> None:
    path = tmp_path / "wide.json"
    path.write_bytes(json.dumps(GOOD).encode("utf-32"))
    result = _load([path])
    assert "UTF-32" in result.failures[0].reason


def test_symlinked_folder_is_followed_and_a_loop_is_reported(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir()
    (real / "t.json").write_text(json.dumps(GOOD))
    root = tmp_path / "traces"
    root.mkdir()
    (root / "linked").symlink_to(real, target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)
    result = _load([root])
    assert [t.trace_id for t in result.traces] == ["traces/linked/t.json"]
    assert any("already read" in s.note and s.path.endswith("loop") for s in result.skipped)


def test_broken_symlink_is_a_failure_naming_its_target(tmp_path: Path) -> None:
    link = tmp_path / "gone.json"
    link.symlink_to(tmp_path / "nowhere.json")
    result = _load([link])
    assert "broken symbolic link" in result.failures[0].reason


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_extract_lists_special_files_as_skipped_and_hashes_only_regular_ones(
    folder: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from trajfm.cli import app

    os.mkfifo(folder / "pipe.json")
    (folder / "zero.json").symlink_to("/dev/zero")
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["extract", str(folder), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "skipped" in res.output and "FIFO" in res.output and "/dev/zero" in res.output
    section = json.loads((out / "manifest.json").read_text())["stages"]["extract"]
    assert [Path(i["path"]).name for i in section["inputs"]] == ["good.json"]
    assert len(section["skipped_files"]) == 2 and section["counts"]["traces_judged"] == 1
