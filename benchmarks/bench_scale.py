"""Scale: extract with the rules judge on 100k / 1M synthetic traces, local vs `--engine ray`; clustering 100k
novel modes with the fp32 MiniLM vs its int8 ONNX export (time, peak memory, and whether the families agree).

    python benchmarks/bench_scale.py make-traces --out /tmp/scale/corpus --seeds 2001-2012
    python benchmarks/bench_scale.py extract /tmp/scale/corpus --repeat 10 --engines local,ray [--report]
    python benchmarks/bench_scale.py cluster [--sizes 198,100000] [--embedders minilm,minilm-int8,minilm:--fit-sample=0]

make-traces: `trajfm synth` once per seed into DIR/s<seed> (881 traces each; keep data out of the repository).
extract: `trajfm extract DIR [DIR ...] --out RUN` in a fresh subprocess per engine. `--repeat K` names the corpus
  folder K times, so K x (traces in DIR) traces are loaded and judged (repeats get distinct ids, `~2`, `~3`, as
  the loader gives repeated ids; every repeat is loaded and judged again, nothing is cached for the rules judge).
  Wall time is the whole command (start-up, Ray start, loading, judging, writing, hashing inputs for the
  manifest); traces/s = traces / wall. Peak memory is the peak over time of the summed PSS (proportional set
  size: shared pages divided among their users, so the Ray object store in /dev/shm is not counted once per
  worker) of the command and every process it started, sampled every 0.5 s from /proc. CPU s is the CPU time
  those processes used (same sampling); traces per CPU second is the figure to compare when other work shares
  the cores, because wall time then mostly measures waiting.
cluster: `trajfm cluster RUN --from-csv CSV --embedder E` in a fresh subprocess and run folder (no embedding
  cache; the int8 ONNX export is made before timing and its one-off cost printed separately). Sizes: `198` is the
  real novel modes file (`assetopsbench/addtional_fm.csv` under ../shared/datasets or $TRAJFM_DATASETS); other
  sizes are made as `bench_cluster.py` makes them (resampled, perturbed real texts). The adjusted Rand index
  compares each embedder's family per novel mode with the first embedder's (outliers, -1, count as one label).
  An embedder may carry extra `trajfm cluster` options after a colon, `=` for a space and `+` between options:
  `minilm:--fit-sample=0` is the fp32 path as it was before the fitted sample (UMAP on every distinct text from
  5,001; identical to the old default for these sizes), `minilm:--seed=1` the same path with another seed. Each
  row prints the distinct texts, the texts fitted by HDBSCAN, and the 1-minute load average at its end.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAJFM = [sys.executable, "-m", "trajfm.cli"]


def _children(pid: int) -> list[int]:
    """`pid` and all its descendants (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) this process itself has used so far (not its children's)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


@dataclass
class Measured:
    wall_s: float
    peak_mb: float
    cpu_s: float  # summed over the command and every process it started, each at its last sample
    proc: subprocess.CompletedProcess


def measure(cmd: list[str], env: dict[str, str] | None = None) -> Measured:
    """Run `cmd`: wall time, peak summed PSS (MB) and CPU seconds of it and its descendants, sampled every
    0.5 s from /proc (a process's last half second, and processes that live less than that, are missed)."""
    peak = [0]
    cpu: dict[int, float] = {}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            tree = _children(proc.pid)
            peak[0] = max(peak[0], sum(_pss_kb(p) for p in tree))
            for p in tree:
                cpu[p] = max(cpu.get(p, 0.0), _cpu_s(p))
            done.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    return Measured(wall, peak[0] / 1024, sum(cpu.values()), subprocess.CompletedProcess(cmd, proc.returncode, out, err))


def make_traces(out: Path, seeds: str) -> int:
    lo, _, hi = seeds.partition("-")
    for seed in range(int(lo), int(hi or lo) + 1):
        target = out / f"s{seed}"
        if target.exists():
            continue
        tmp = out / f".s{seed}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run([*TRAJFM, "synth", "--out", str(tmp), "--seed", str(seed)], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        (tmp / "labels.jsonl").unlink(missing_ok=True)  # the sidecar labels are not traces
        tmp.rename(target)
        print(f"wrote {target}", flush=True)
    return 0


def extract(corpus: Path, repeat: int, engines: list[str], keep: Path | None, report: bool = False) -> int:
    print(f"{'engine':>7} {'traces':>9} {'wall s':>8} {'traces/s':>9} {'CPU s':>7} {'per CPU s':>9} {'peak MB':>8}  "
          "phases (s, from the manifest)")  # fmt: skip
    rates: dict[str, float] = {}
    for engine in engines:
        with tempfile.TemporaryDirectory(dir=keep) as tmp:
            run = Path(tmp) / "run"
            cmd = [*TRAJFM, "extract", *([str(corpus)] * repeat), "--out", str(run), "--no-progress"]
            if engine != "local":
                cmd += ["--engine", engine]
            r = measure(cmd)
            if r.proc.returncode != 0:
                print(f"{engine:>7} failed ({r.proc.returncode}):\n{r.proc.stderr[-3000:]}")
                return 1
            section = json.loads((run / "manifest.json").read_text())["stages"]["extract"]
            n = section["counts"]["traces_judged"]
            rates[engine] = n / r.wall_s
            phases = " ".join(f"{k} {v:.1f}" for k, v in section["timings_s"].items())
            print(f"{engine:>7} {n:>9,} {r.wall_s:>8.1f} {n / r.wall_s:>9,.0f} {r.cpu_s:>7.1f} "
                  f"{n / max(r.cpu_s, 1e-9):>9,.0f} {r.peak_mb:>8,.0f}  {phases}", flush=True)  # fmt: skip
            if report:
                rep = measure([*TRAJFM, "report", str(run)])
                if rep.proc.returncode != 0:
                    print(f" report failed ({rep.proc.returncode}):\n{rep.proc.stderr[-3000:]}")
                    return 1
                html = run / "report.html"
                size = html.stat().st_size / 1e6 if html.exists() else float("nan")
                print(f"{'report':>7} {n:>9,} {rep.wall_s:>8.1f} {'':>9} {rep.cpu_s:>7.1f} {'':>9} "
                      f"{rep.peak_mb:>8,.0f}  report.html {size:.1f} MB (trajfm report on the {engine} run)",
                      flush=True)  # fmt: skip
    if "local" in rates and len(rates) > 1:
        for engine, rate in rates.items():
            if engine != "local":
                print(f"ratio {engine} / local: {rate / rates['local']:.2f}x")
    return 0


def _bench_cluster_module():
    spec = importlib.util.spec_from_file_location("bench_cluster", REPO / "benchmarks" / "bench_cluster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cluster(sizes: list[int], embedders: list[str], datasets: Path, seed: int) -> int:
    import polars as pl
    from sklearn.metrics import adjusted_rand_score

    source = datasets / "assetopsbench" / "addtional_fm.csv"
    if not source.exists():
        print(f"skipped: {source} not found (set TRAJFM_DATASETS)")
        return 0
    if any(e.partition(":")[0] == "minilm-int8" for e in embedders):
        t0 = time.perf_counter()
        from trajfm.clustering.onnx_embed import OnnxMiniLMEmbedder

        OnnxMiniLMEmbedder().encode(["warm-up: export and quantise once"])
        print(f"int8 ONNX export ready in {time.perf_counter() - t0:.1f} s (cached after the first run)")
    print(f"{'items':>8} {'distinct':>8} {'fitted':>6} {'embedder':>22} {'wall s':>7} {'CPU s':>7} {'peak MB':>8} "
          f"{'clusters':>8} {'outliers':>8} {'ARI vs ' + embedders[0]:>16} {'load':>5}  phases (s)")  # fmt: skip
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            csv = source if n == 198 else Path(tmp) / "modes.csv"
            if n != 198:
                _bench_cluster_module().make_csv(source, n, seed, csv)
            labels: dict[str, pl.DataFrame] = {}
            for k, spec in enumerate(embedders):
                emb, _, extra = spec.partition(":")
                run = Path(tmp) / f"run-{k}-{emb}"
                cmd = [*TRAJFM, "cluster", str(run), "--from-csv", str(csv), "--embedder", emb, "--seed", str(seed),
                       *[a for opt in extra.split("+") if opt for a in opt.split("=", 1)]]  # fmt: skip
                r = measure(cmd)
                if r.proc.returncode != 0:
                    print(f"{n:>8} {spec:>22} failed:\n{r.proc.stderr[-3000:]}")
                    return 1
                m = json.loads((run / "manifest.json").read_text())["stages"]["cluster"]
                labels[spec] = pl.read_parquet(run / "novel_assignments.parquet").select("novel_id", "cluster_id")
                ref = labels[embedders[0]].join(labels[spec], on="novel_id", suffix="_b")
                ari = adjusted_rand_score(ref["cluster_id"].to_list(), ref["cluster_id_b"].to_list())
                phases = " ".join(f"{k[:-2]} {v:.1f}" for k, v in m["timings"].items() if k != "total_s")
                counts = m["counts"]
                print(f"{n:>8} {counts['distinct_texts']:>8} {counts.get('fitted_texts', counts['distinct_texts']):>6} "
                      f"{spec:>22} {r.wall_s:>7.1f} {r.cpu_s:>7.1f} {r.peak_mb:>8,.0f} {counts['clusters']:>8} "
                      f"{m['outliers']['share']:>8.1%} {ari:>16.4f} {os.getloadavg()[0]:>5.1f}  {phases}",
                      flush=True)  # fmt: skip
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    mk = sub.add_parser("make-traces")
    mk.add_argument("--out", type=Path, required=True)
    mk.add_argument("--seeds", default="2001-2012")
    ex = sub.add_parser("extract")
    ex.add_argument("corpus", type=Path)
    ex.add_argument("--repeat", type=int, default=1)
    ex.add_argument("--engines", default="local,ray")
    ex.add_argument("--tmp", type=Path, default=None, help="Where the run folders go (default: the system temp).")
    ex.add_argument("--report", action="store_true", help="Also time `trajfm report` on each run (peak memory, size).")
    cl = sub.add_parser("cluster")
    cl.add_argument("--sizes", default="198,100000")
    cl.add_argument("--embedders", default="minilm,minilm-int8")
    cl.add_argument("--seed", type=int, default=0)
    cl.add_argument(
        "--datasets", type=Path,
        default=Path(os.environ.get("TRAJFM_DATASETS", REPO.parent / "shared" / "datasets")),
    )  # fmt: skip
    args = ap.parse_args()
    if args.what == "make-traces":
        return make_traces(args.out, args.seeds)
    if args.what == "extract":
        return extract(args.corpus, args.repeat, args.engines.split(","), args.tmp, args.report)
    return cluster([int(s) for s in args.sizes.split(",")], args.embedders.split(","), args.datasets, args.seed)


if __name__ == "__main__":
    raise SystemExit(main())
