"""Hostile inputs mixed with good traces: every run must end, process the good traces and list the bad ones.

Usage:  python benchmarks/bench_hostile.py [--good 40] [--bomb-gb 1] [--plain-mb 200] [--steps 50000]

Each scenario is one `trajfm extract` in a fresh process on a folder holding `--good` bundled traces plus the
hostile file(s); the script prints per scenario the wall time, the process's peak memory (ru_maxrss from wait4),
traces judged, and the load failures / skipped files extract listed. Scenarios:
  fifo        a FIFO named like a trace (opening it would block forever)
  dev-zero    a symlink to /dev/zero (reading or hashing it never ends)
  gzip-bomb   a ~1 MB .json.gz that inflates to --bomb-gb GB (one JSON string)
  plain-big   a --plain-mb MB plain JSON trace (over the default --max-trace-mb 100: refused unread)
  plain-big-read  the same with --max-trace-mb above its size (read and judged)
  long-trace  a --steps-message chat trace with no tool calls (the repeated-reasoning check's worst shape)
  scaling     no extract: the same shape of trace at each of --scaling-steps (default 5,000 and 50,000 steps),
              loaded, then judged by the rules judge in this process (its default 60 s per-trace limit on);
              prints seconds, microseconds per step, function calls per step (counted with sys.setprofile: a
              measure of the work done that machine load does not change) and the status for each, and the
              ratios of the longest to the shortest (about 1 when the judge is linear in the trace's length;
              wall time per step also grows with cache misses and a busy machine, calls per step do not).
Targets (issue 16): the good traces judged in every scenario, the bad file listed, peak memory under 1.5 GB for
the gzip bomb, the long trace judged within the rules judge's per-trace limit (60 s), and by its own cost (linear
in steps, well under the limit) rather than stopped by it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "traces" / "assetops"


def copy_good(dest: Path, n: int) -> None:
    files = sorted(p for p in CORPUS.rglob("*.gz") if p.is_file())[:n]
    for f in files:
        target = dest / "good" / f.relative_to(CORPUS)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, target)


def write_bomb(path: Path, gb: float) -> None:
    """A gzip member holding {"messages": [{"role": "user", "content": "aaaa..."}]} of `gb` GB, streamed."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip container
    block = b"a" * (1 << 24)
    with open(path, "wb") as fh:
        fh.write(comp.compress(b'{"messages": [{"role": "user", "content": "'))
        for _ in range(int(gb * (1 << 30)) // len(block)):
            fh.write(comp.compress(block))
        fh.write(comp.compress(b'"}]}'))
        fh.write(comp.flush())


def write_plain(path: Path, mb: float) -> None:
    """A chat trace of `mb` MB: messages of ~10 KB of words."""
    rng = random.Random(0)
    words = [f"word{i}" for i in range(5000)]
    with open(path, "w") as fh:
        fh.write("[")
        size, n = 0, 0
        while size < mb * 1e6:
            text = " ".join(rng.choice(words) for _ in range(1500))
            role = "user" if n % 2 == 0 else "assistant"
            chunk = ("," if n else "") + json.dumps({"role": role, "content": text})
            fh.write(chunk)
            size += len(chunk)
            n += 1
        fh.write("]")


def write_long(path: Path, steps: int) -> None:
    """A multi-agent chat log of `steps` messages, no tool calls; one in 50 restates an earlier one."""
    rng = random.Random(1)
    words = [f"w{i}" for i in range(3000)]
    messages = [{"role": "user", "content": "Plan and carry out the task; report the result."}]
    history: list[str] = []
    for i in range(steps - 1):
        if history and i % 50 == 0:
            text = rng.choice(history)
        else:
            text = " ".join(rng.choice(words) for _ in range(rng.randint(12, 60)))
            history.append(text)
        messages.append({"role": "assistant", "name": f"agent{i % 3}", "content": text})
    path.write_text(json.dumps(messages))


def run_extract(folder: Path, out: Path, *extra: str) -> dict[str, object]:
    cmd = [
        sys.executable,
        "-m",
        "trajfm.cli",
        "extract",
        str(folder),
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    # The extract process is this helper's only child (see run_isolated): the children's high-water mark is its
    # peak resident memory.
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    manifest = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else {}
    section = manifest.get("stages", {}).get("extract", {})
    return {
        "exit": proc.returncode,
        "wall_s": round(wall, 1),
        "peak_children_mb": round(peak_mb),
        "judged": section.get("counts", {}).get("statuses"),
        "failures": section.get("load_failures", []),
        "skipped": [s for s in section.get("skipped_files", []) if ": not a trace file (" not in s],
        "stderr_tail": stderr.strip().splitlines()[-3:] if proc.returncode else [],
    }


def run_isolated(folder: Path, out: Path, *extra: str) -> dict[str, object]:
    """`run_extract` in its own helper process, so ru_maxrss of its children is this scenario's peak alone."""
    code = (
        f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_hostile as b; from pathlib import Path; "
        "print(json.dumps(b.run_extract(Path(sys.argv[1]), Path(sys.argv[2]), *sys.argv[3:])))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(folder), str(out), *extra], capture_output=True, text=True
    )
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-3:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def count_calls(fn: Callable[[], object]) -> int:
    """Python and C function calls made by `fn()` (a deterministic measure of the work it does)."""
    calls = 0

    def profile(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def scaling(base: Path, sizes: list[int], repeat: int = 3) -> None:
    """The rules judge's cost per step on traces of each size in `sizes` (see the module docstring)."""
    from trajfm.judges.rules import DEFAULT_TIME_LIMIT_S, RulesJudge
    from trajfm.taxonomy import load_taxonomy
    from trajfm.traces import load_traces

    judge, taxonomy = RulesJudge(), load_taxonomy("mast")
    per_step: dict[int, float] = {}
    calls_per_step: dict[int, float] = {}
    print(f"scaling: the rules judge on one long chat trace (per-trace limit {judge.time_limit_s} s, default "
          f"{DEFAULT_TIME_LIMIT_S} s); best of {repeat} runs")  # fmt: skip
    for n in sizes:
        path = base / f"long-{n}.json"
        write_long(path, n)
        [trace] = load_traces([path]).traces
        times, status = [], ""
        for _ in range(repeat):
            t0 = time.perf_counter()
            d = judge.diagnose(trace, taxonomy)  # raises TraceTimeLimit past the limit
            times.append(time.perf_counter() - t0)
            status = f"{d.status}, {sum(bool(m.detected) for m in d.modes)} modes detected"
        best = min(times)
        per_step[n] = best / len(trace.steps)
        calls_per_step[n] = count_calls(lambda: judge.diagnose(trace, taxonomy)) / len(trace.steps)  # noqa: B023
        print(f"  {n:>7,} messages ({len(trace.steps):,} steps): {best:7.2f} s, {per_step[n] * 1e6:7.1f} µs and "
              f"{calls_per_step[n]:.1f} function calls per step ({status}); {best / judge.time_limit_s:.1%} of the "
              "per-trace limit", flush=True)  # fmt: skip
        path.unlink()
    if len(per_step) > 1:
        lo, hi = min(per_step), max(per_step)
        print(f"  per step at {hi:,} vs {lo:,} messages: wall time x{per_step[hi] / per_step[lo]:.2f}, function "
              f"calls x{calls_per_step[hi] / calls_per_step[lo]:.2f} (a pairwise scan would be x{hi / lo:.0f})")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--good", type=int, default=40)
    ap.add_argument("--bomb-gb", type=float, default=1.0)
    ap.add_argument("--plain-mb", type=float, default=200.0)
    ap.add_argument("--steps", type=int, default=50_000)
    ap.add_argument("--scaling-steps", default="5000,50000", help="trace sizes of the scaling scenario")
    ap.add_argument("--only", nargs="*", default=None, help="scenario names to run (default: all)")
    ap.add_argument("--tmp", default=None, help="folder for the generated files (default: a temp folder)")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="trajfm-hostile-", dir=args.tmp))
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; files in {base}")
    scenarios = ["fifo", "dev-zero", "gzip-bomb", "plain-big", "plain-big-read", "long-trace"]
    results = {}
    try:
        if not args.only or "scaling" in args.only:
            scaling(base, [int(n) for n in args.scaling_steps.split(",")])
        for name in scenarios:
            if args.only and name not in args.only:
                continue
            folder = base / name / "traces"
            folder.mkdir(parents=True)
            copy_good(folder, args.good)
            extra: list[str] = []
            t0 = time.perf_counter()
            if name == "fifo":
                os.mkfifo(folder / "pipe.json")
            elif name == "dev-zero":
                (folder / "zero.json").symlink_to("/dev/zero")
            elif name == "gzip-bomb":
                write_bomb(folder / "bomb.json.gz", args.bomb_gb)
                size = (folder / "bomb.json.gz").stat().st_size
                with gzip.open(folder / "bomb.json.gz") as fh:  # check the size it inflates to, streamed
                    inflated = sum(len(b) for b in iter(lambda: fh.read(1 << 24), b""))
                print(f"  gzip bomb: {size / 1e6:.2f} MB on disk, inflates to {inflated / 1e9:.2f} GB")
            elif name.startswith("plain-big"):
                write_plain(folder / "big.json", args.plain_mb)
                print(f"  plain trace: {(folder / 'big.json').stat().st_size / 1e6:.0f} MB")
                if name == "plain-big-read":
                    extra = ["--max-trace-mb", str(args.plain_mb * 1.1)]
            elif name == "long-trace":
                write_long(folder / "long.json", args.steps)
                print(
                    f"  long trace: {args.steps} messages, {(folder / 'long.json').stat().st_size / 1e6:.1f} MB"
                )
            made = time.perf_counter() - t0
            r = run_isolated(folder, base / name / "run", *extra)
            results[name] = r
            print(f"{name}: made in {made:.1f} s; extract {json.dumps(r)}", flush=True)
            shutil.rmtree(base / name, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("\nsummary (scenario: exit, wall s, peak MB, statuses, listed bad files)")
    for name, r in results.items():
        listed = len(r.get("failures", [])) + len(r.get("skipped", []))
        print(f"  {name:15s} exit {r.get('exit')}  {r.get('wall_s')} s  {r.get('peak_children_mb')} MB  "
              f"{r.get('judged')}  {listed} listed")  # fmt: skip


if __name__ == "__main__":
    main()
