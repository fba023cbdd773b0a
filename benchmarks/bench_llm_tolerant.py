"""The LLM judge against replies written the way real models write them, with repair turns on and off.

Usage: python benchmarks/bench_llm_tolerant.py [--traces traces/assetops] [--deviation-rate 0.5]
                                              [--unusable-rate 0.03] [--latency-ms 20] [--concurrency 16]

The local test endpoint (`trajfm.testing.LocalEndpoint`, a real HTTP server on 127.0.0.1) answers
--unusable-rate of the traces with a reply no reader can use (prose without JSON, or JSON without
failure_modes: `UNUSABLE_KINDS`) and about --deviation-rate of the others with one of the deviations the issue
saw from real models (`USABLE_KINDS`: ids with names or prefixes, mode names alone, bare booleans, modes left
out, a detection without a step, "Step 3", prose around fenced JSON, quotes starting with the rendering's
labels). The deviation of a trace is the same on every identical retry (like a model at temperature 0); a repair
turn is answered cleanly (a model that follows the correction). Every quote the endpoint writes is copied
verbatim from the rendered trace it was shown.

Printed for repair turns on (the default) and off (the runner's identical retries, as before):
- traces ok (target >= 99%), calls per trace (target <= 1.05), parse errors;
- verbatim quotes verified: detected modes of ok traces whose quote was verified, over those with a quote
  (target >= 98%); the modes detected without a step are counted apart, because a citation without a step is
  never counted as verified (trajfm.judges.evidence);
- per deviation kind: traces, ok, calls.
Not a timed test: run it by hand or from benchmarks/run_all.sh.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _label_unaware(quote: str, text: str) -> bool:
    """The quote check trajfm made before issue 12: normalised case, typography and whitespace, against the raw
    trace text, with no knowledge of the rendering's labels (kept here only to print the comparison)."""
    import re

    from trajfm.judges.evidence import _ELLIPSIS, _TYPOGRAPHY, _strip_wrapping_quotes

    def norm(s: str) -> str:
        return re.sub(r"\s+", " ", s.translate(_TYPOGRAPHY).casefold()).strip()

    parts = [norm(p) for p in _ELLIPSIS.split(_strip_wrapping_quotes(quote)) if norm(p)]
    hay, pos = norm(text), 0
    for part in parts:
        found = hay.find(part, pos)
        if found < 0:
            return False
        pos = found + len(part)
    return bool(parts)


def run_once(traces: list, tax, args: argparse.Namespace, repair_turns: int) -> None:
    from trajfm.judges.llm import LLMJudge
    from trajfm.judges.prompt import fence_tag
    from trajfm.judges.runner import RunStats, run_judge
    from trajfm.testing import EndpointConfig, LocalEndpoint
    from trajfm.testing.deviations import USABLE_KINDS

    cfg = EndpointConfig(
        latency_ms=args.latency_ms, deviation_rate=args.deviation_rate, deviations=USABLE_KINDS,
        unusable_rate=args.unusable_rate, seed=args.seed,
    )  # fmt: skip
    with LocalEndpoint(cfg) as ep:
        judge = LLMJudge("trajfm-test", base_url=ep.url, repair_turns=repair_turns)
        stats = RunStats()
        t0 = time.perf_counter()
        out = run_judge(
            judge, traces, tax, concurrency=args.concurrency, max_retries=args.max_retries, stats=stats,
            progress=False, backoff_base=0.05, backoff_cap=0.5,
        )  # fmt: skip
        wall = time.perf_counter() - t0
        deviation_of = {r.fence_tag: r.deviation for r in ep.requests if not r.repair_turn}
        repairs_sent = sum(r.repair_turn for r in ep.requests)
    n = len(out)
    statuses = Counter(d.status for d in out)
    ok = [d for d in out if d.status == "ok"]
    quoted = [m for d in ok for m in d.detected if m.evidence]
    with_step = [m for m in quoted if m.steps]
    no_step = [m for m in quoted if not m.steps]
    verified = sum(m.evidence_verified for m in with_step)
    share = verified / len(with_step) if with_step else 0.0
    by_id = {t.trace_id: t for t in traces}
    before = sum(
        _label_unaware(m.evidence, by_id[d.trace_id].text())
        for d in ok
        for m in d.detected
        if m.evidence and m.steps
    )
    name = "on (1 repair turn)" if repair_turns else "off (identical retries)"
    print(f"repair turns {name}: {n} traces in {wall:.1f} s, concurrency {args.concurrency}, "
          f"max {args.max_retries} retries")  # fmt: skip
    print(f"  ok {statuses.get('ok', 0)}/{n} = {statuses.get('ok', 0) / n:.2%} (target >= 99%); "
          f"statuses {dict(statuses)}")  # fmt: skip
    print(f"  calls {stats.calls} = {stats.calls / n:.3f} per trace (target <= 1.05); repair turns sent "
          f"{repairs_sent}; runner retries {stats.retries}")  # fmt: skip
    print(f"  verbatim quotes verified {verified}/{len(with_step)} = {share:.2%} (target >= 98%); "
          f"{len(no_step)} more quotes belong to modes detected without a step (never counted verified), "
          f"{sum(m.evidence_verified for m in no_step)} of them verified")  # fmt: skip
    print(f"  the same quotes checked the way trajfm did before (raw trace text, labels not recognised): "
          f"{before}/{len(with_step)} verified")  # fmt: skip
    by_kind: dict[str, list] = defaultdict(list)
    for t, d in zip(traces, out, strict=True):
        tags = [fence_tag(c.text) for c in judge.render(t).chunks]
        kind = next((deviation_of.get(tag) for tag in tags if deviation_of.get(tag)), None) or "clean"
        by_kind[kind].append(d)
    print("  per deviation: kind traces ok calls")
    for kind in sorted(by_kind, key=lambda k: (k != "clean", k)):
        ds = by_kind[kind]
        print(
            f"    {kind:16s} {len(ds):4d} {sum(d.status == 'ok' for d in ds):4d} {sum(d.calls for d in ds):5d}"
        )
    repaired = Counter(c for d in ok for c in d.extra.get("reply_repairs", []))
    print(f"  reply_repairs recorded: {dict(sorted(repaired.items()))}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traces", default=str(REPO / "traces" / "assetops"))
    ap.add_argument("--deviation-rate", type=float, default=0.5)
    ap.add_argument("--unusable-rate", type=float, default=0.03)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--max-retries", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from trajfm.taxonomy import load_taxonomy
    from trajfm.testing.deviations import UNUSABLE_KINDS, USABLE_KINDS
    from trajfm.traces.load import load_traces

    loaded = load_traces([Path(args.traces)])
    if not loaded.traces:
        print(f"no traces in {args.traces}", file=sys.stderr)
        return 1
    tax = load_taxonomy("mast")
    print(f"corpus: {args.traces} ({len(loaded.traces)} traces); endpoint 127.0.0.1, latency {args.latency_ms:g} ms; "
          f"unusable rate {args.unusable_rate:g} ({', '.join(UNUSABLE_KINDS)}), then deviation rate "
          f"{args.deviation_rate:g} over {', '.join(USABLE_KINDS)}\n")  # fmt: skip
    for repair_turns in (1, 0):
        run_once(loaded.traces, tax, args, repair_turns)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
