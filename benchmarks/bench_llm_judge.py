"""LLM judge throughput and fault tolerance against the local test endpoint (`trajfm.testing.LocalEndpoint`).

Usage: python benchmarks/bench_llm_judge.py [--traces traces/assetops] [--latency-ms 200] [--concurrency 16]
                                           [--serial-subset 40] [--fault-rate 0.1] [--skip-faults]

What it measures (all calls go to a real HTTP server on 127.0.0.1 that answers after --latency-ms):
1. Throughput: the whole corpus with --concurrency, wall time against the ideal N x latency / concurrency
   (target: within 1.25x).
2. One-at-a-time: concurrency 1 on the first --serial-subset traces, extrapolated linearly to N traces (said so
   in the output); the speed-up of (1) over it (target: at least 12x).
3. Faults: the corpus again with --fault-rate of requests failing (429 with retry-after, 500, hangs past the
   client timeout, malformed / truncated / wrong-key JSON, cut HTTP bodies), max 4 retries, with a reply cache;
   then the same run again: it must make zero calls for traces already done (cache hits printed) and finish the
   rest.
4. The same with no retries, so some traces really end failed (each with its error recorded), then a re-run with
   faults still on and 4 retries: zero calls for traces already done, the rest completed.
The traces are the bundled corpus when --traces exists (loaded with trajfm's loaders), otherwise synthetic
in-memory traces of the same count (reported). Not a timed test: run it by hand or from benchmarks/run_all.sh.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_corpus(path: Path, n_fallback: int) -> tuple[list, str]:
    from trajfm.testing import synthetic_traces

    if path.exists():
        from trajfm.traces.load import load_traces

        result = load_traces([path])
        if result.traces:
            return (
                result.traces,
                f"{path} ({len(result.traces)} traces, {len(result.failures)} load failures)",
            )
    return synthetic_traces(n_fallback), f"{n_fallback} synthetic in-memory traces ({path} not found)"


def done_tags(judge, traces: list, diagnoses: list) -> set[str]:
    """Fence tags of the traces judged ok. A fence tag hashes the rendered trace, so it names a trace's calls in
    the endpoint's log (task texts repeat across the corpus, tags do not)."""
    from trajfm.judges.prompt import fence_tag

    return {
        fence_tag(c.text)
        for t, d in zip(traces, diagnoses, strict=True)
        if d.status == "ok"
        for c in judge.render(t).chunks
    }


@contextmanager
def faulty_endpoint(args: argparse.Namespace, *, seed: int) -> Iterator[tuple]:
    """The set-up of steps 3 and 4: an endpoint failing --fault-rate of requests (hangs outlast the client
    timeout), an LLM judge talking to it, and an empty reply cache in a temporary folder."""
    from trajfm.judges.cache import JudgeCache
    from trajfm.judges.llm import LLMJudge
    from trajfm.testing import EndpointConfig, LocalEndpoint

    cfg = EndpointConfig(
        latency_ms=args.latency_ms,
        fault_rate=args.fault_rate,
        retry_after_s=0.5,
        hang_s=3 * args.timeout_s,
        seed=seed,
    )
    with tempfile.TemporaryDirectory() as tmp, LocalEndpoint(cfg) as ep:
        cache = JudgeCache(Path(tmp) / "cache" / "judge_cache.sqlite")
        judge = LLMJudge("trajfm-test", base_url=ep.url, timeout_s=args.timeout_s)
        yield ep, judge, cache


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traces", default=str(REPO / "traces" / "assetops"))
    ap.add_argument("--latency-ms", type=float, default=200.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--serial-subset", type=int, default=40)
    ap.add_argument("--fault-rate", type=float, default=0.1)
    ap.add_argument("--timeout-s", type=float, default=2.0, help="client timeout (hang faults last 3x this)")
    ap.add_argument("--skip-faults", action="store_true")
    args = ap.parse_args()

    from trajfm.judges.llm import LLMJudge
    from trajfm.judges.runner import RunStats, run_judge
    from trajfm.taxonomy import load_taxonomy
    from trajfm.testing import EndpointConfig, LocalEndpoint

    tax = load_taxonomy("mast")
    traces, origin = load_corpus(Path(args.traces), 881)
    n, lat, conc = len(traces), args.latency_ms / 1000.0, args.concurrency
    print(f"python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} cores")
    print(f"corpus: {origin}")
    print(f"endpoint: 127.0.0.1, latency {args.latency_ms:g} ms per reply\n")

    # 1. throughput at full concurrency
    with LocalEndpoint(EndpointConfig(latency_ms=args.latency_ms)) as ep:
        judge = LLMJudge("trajfm-test", base_url=ep.url, timeout_s=args.timeout_s)
        stats = RunStats()
        t0 = time.perf_counter()
        out = run_judge(judge, traces, tax, concurrency=conc, stats=stats, progress=False)
        wall = time.perf_counter() - t0
        requests = len(ep.requests)
    ideal = n * lat / conc
    statuses = Counter(d.status for d in out)
    detected = sum(len(d.detected) for d in out)
    verified = sum(m.evidence_verified for d in out for m in d.detected)
    print(
        f"[1] concurrency {conc}: {n} traces in {wall:.2f} s ({n / wall:.1f} traces/s), {requests} requests"
    )
    print(
        f"    ideal {n} x {lat:g} s / {conc} = {ideal:.2f} s -> {wall / ideal:.3f}x ideal (target <= 1.25x)"
    )
    print(f"    statuses {dict(statuses)}; {detected} detected modes, {verified} with verified evidence; "
          f"tokens in/out {stats.tokens_in}/{stats.tokens_out}")  # fmt: skip

    # 2. one at a time, on a subset, extrapolated
    subset = traces[: min(args.serial_subset, n)]
    with LocalEndpoint(EndpointConfig(latency_ms=args.latency_ms)) as ep:
        judge = LLMJudge("trajfm-test", base_url=ep.url, timeout_s=args.timeout_s)
        t0 = time.perf_counter()
        run_judge(judge, subset, tax, concurrency=1, progress=False)
        serial_wall = time.perf_counter() - t0
    per_trace = serial_wall / len(subset)
    serial_est = per_trace * n
    print(f"[2] one at a time: {len(subset)} traces in {serial_wall:.2f} s ({per_trace * 1000:.0f} ms each); "
          f"extrapolated linearly to {n} traces: {serial_est:.1f} s (measured on a subset, not the full corpus)")  # fmt: skip
    print(f"    speed-up of concurrency {conc} over one at a time: {serial_est / wall:.1f}x (target >= 12x)")

    if args.skip_faults:
        return 0
    # 3. faults, then a re-run over the same cache
    with faulty_endpoint(args, seed=1) as (ep, judge, cache):
        s1 = RunStats()
        t0 = time.perf_counter()
        out1 = run_judge(
            judge, traces, tax, concurrency=conc, cache=cache, max_retries=4, stats=s1, progress=False
        )
        wall1 = time.perf_counter() - t0
        first = list(ep.requests)
        faults = Counter(r.fault for r in first if r.fault)
        attempts = Counter(d.extra.get("attempts", 0) for d in out1)
        unrecorded = [d.trace_id for d in out1 if d.status != "ok" and not d.error]
        print(f"[3] {args.fault_rate:.0%} injected faults: {n} traces in {wall1:.2f} s, {len(first)} requests, "
              f"{s1.retries} retries")  # fmt: skip
        print(f"    faults injected: {dict(sorted(faults.items()))}")
        print(f"    statuses {dict(Counter(d.status for d in out1))}; attempts per trace {dict(sorted(attempts.items()))} "
              f"(max allowed 5); failures without a recorded error: {len(unrecorded)}")  # fmt: skip
        for err, count in sorted(s1.errors.items(), key=lambda kv: -kv[1])[:5]:
            print(f"      {count} x {err}")
        tag_done = done_tags(judge, traces, out1)

        ep.config.fault_rate = 0.0
        s2 = RunStats()
        out2 = run_judge(judge, traces, tax, concurrency=conc, cache=cache, stats=s2, progress=False)
        second = ep.requests[len(first) :]
        repeated = sum(1 for r in second if r.fence_tag in tag_done)
        print(f"    re-run: cache hits {s2.cached}, calls {s2.calls}, calls for traces already done {repeated}, "
              f"statuses {dict(Counter(d.status for d in out2))}")  # fmt: skip

    # 4. the same faults with no retries at all, so some traces really end failed; then re-run (faults still on)
    with faulty_endpoint(args, seed=2) as (ep, judge, cache):
        s1 = RunStats()
        out1 = run_judge(
            judge, traces, tax, concurrency=conc, cache=cache, max_retries=0, stats=s1, progress=False
        )
        first = len(ep.requests)
        failed = [d for d in out1 if d.status != "ok"]
        print(f"[4] {args.fault_rate:.0%} faults and --max-retries 0: statuses {dict(Counter(d.status for d in out1))}; "
              f"{sum(1 for d in failed if d.error)} of {len(failed)} failures carry their error, "
              f"{sum(1 for d in failed if d.status == 'parse_error' and d.raw_reply)} parse errors keep the raw reply")  # fmt: skip
        tag_done = done_tags(judge, traces, out1)
        s2 = RunStats()
        out2 = run_judge(
            judge, traces, tax, concurrency=conc, cache=cache, max_retries=4, stats=s2, progress=False
        )
        second = ep.requests[first:]
        repeated = sum(1 for r in second if r.fence_tag in tag_done)
        print(f"    re-run (faults still on, 4 retries): cache hits {s2.cached}, calls {s2.calls} for "
              f"{len(failed)} unfinished traces, calls for traces already done {repeated}, "
              f"statuses {dict(Counter(d.status for d in out2))}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
