"""Write or compare the rules judge's full output on the bundled corpus and the visible labelled datasets.

    python benchmarks/rules_judge_outputs.py write REF.jsonl [--datasets DIR]
    python benchmarks/rules_judge_outputs.py compare REF.jsonl [--datasets DIR]

The guard for speed work on the rules judge: take a reference from the code before a change (`write`), then check
the changed code gives the same diagnoses (`compare`): every field of every `Diagnosis` (modes, novel modes, root
cause, summary, dimensions, the raw findings in `extra`) except `latency_s`, for each taxonomy (mast, trail,
agentrx) and with the default and the all-detectors judge. `prompt_version` is left out too: it is a hash of
the rules' source (`judges/rules_version.py`), so every edit changes it by design. Inputs: the bundled corpus (`traces/`), and under
DIR (default $TRAJFM_DATASETS or ../shared/datasets) the same trace files the benches load: Who&When
Algorithm-Generated, AgentRx tau-bench retail, TRAIL GAIA, the MAST human subset and the AssetOpsBench public
files. `compare` prints the first differences and exits 1 when any row differs or is missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from trajfm.judges.rules import RulesJudge
from trajfm.taxonomy import load_taxonomy
from trajfm.traces import load_traces
from trajfm.traces.model import Trace

REPO = Path(__file__).resolve().parents[1]
TAXONOMIES = ("mast", "trail", "agentrx")


def inputs(datasets: Path) -> list[tuple[str, list[Path]]]:
    """(name, paths) of every input; a dataset folder that is absent is left out (and said so)."""
    out = [("bundled", [REPO / "traces"])]
    wanted = (
        ("whowhen", [datasets / "who_and_when" / "Algorithm-Generated"]),
        ("agentrx-tau", [datasets / "agentrx" / "tau_retail" / "tau_dataset_full.json"]),
        ("trail-gaia", [datasets / "trail" / "data" / "GAIA"]),
        ("mast-human", [datasets / "mast_mad_human" / "MAD_human_labelled_dataset.json"]),
        ("assetopsbench", [datasets / "assetopsbench"]),
    )
    for name, paths in wanted:
        if all(p.exists() for p in paths):
            out.append((name, paths))
        else:
            print(f"{name}: not found under {datasets}, left out", file=sys.stderr)
    return out


def rows(datasets: Path) -> Iterator[tuple[str, dict[str, object]]]:
    """(key, diagnosis without its timing) for every input trace x taxonomy x judge setting."""
    judges = {"default": RulesJudge(), "all": RulesJudge(all_detectors=True)}
    taxonomies = {name: load_taxonomy(name) for name in TAXONOMIES}
    for name, paths in inputs(datasets):
        traces: list[Trace] = list(load_traces(paths).traces)
        print(f"{name}: {len(traces)} traces", file=sys.stderr)
        for k, trace in enumerate(traces):
            for jname, judge in judges.items():
                for tname, tax in taxonomies.items():
                    if jname == "all" and tname != "mast":
                        continue  # the all-detectors setting once, on the default taxonomy
                    d = dataclasses.asdict(judge.diagnose(trace, tax))
                    d.pop("latency_s", None)
                    d.pop("prompt_version", None)  # a hash of the rules' source files: any edit changes it
                    yield f"{name}/{k}/{trace.trace_id}/{jname}/{tname}", d


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=("write", "compare"))
    ap.add_argument("reference", type=Path)
    default = Path(os.environ.get("TRAJFM_DATASETS", REPO.parent / "shared" / "datasets"))
    ap.add_argument("--datasets", type=Path, default=default)
    args = ap.parse_args()
    if args.action == "write":
        n = 0
        with args.reference.open("w", encoding="utf-8") as fh:
            for key, d in rows(args.datasets):
                fh.write(json.dumps({"key": key, "diagnosis": d}, sort_keys=True, ensure_ascii=False) + "\n")
                n += 1
        print(f"wrote {n} rows to {args.reference}")
        return 0
    ref: dict[str, str] = {}
    with args.reference.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            ref[row["key"]] = json.dumps(row["diagnosis"], sort_keys=True, ensure_ascii=False)
    seen, diffs = 0, []
    for key, d in rows(args.datasets):
        seen += 1
        got = json.dumps(d, sort_keys=True, ensure_ascii=False)
        want = ref.pop(key, None)
        if want != got:
            diffs.append((key, want, got))
    for key, want, got in diffs[:5]:
        if want is None:
            print(f"NEW ROW {key}")
            continue
        old, new = json.loads(want), json.loads(got)
        for field in sorted(set(old) | set(new)):
            if old.get(field) != new.get(field):
                print(f"DIFFERS {key} {field}:\n  reference: {str(old.get(field))[:400]}\n  now:       "
                      f"{str(new.get(field))[:400]}")
    for key in list(ref)[:5]:
        print(f"MISSING now: {key}")
    if diffs:
        per_input: dict[str, int] = {}
        for key, _, _ in diffs:
            per_input[key.split("/", 1)[0]] = per_input.get(key.split("/", 1)[0], 0) + 1
        print("differing rows per input: " + ", ".join(f"{k} {v}" for k, v in sorted(per_input.items())))
    print(f"compared {seen} rows: {len(diffs)} differ, {len(ref)} in the reference only")
    return 1 if diffs or ref else 0


if __name__ == "__main__":
    raise SystemExit(main())
