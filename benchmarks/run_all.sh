#!/usr/bin/env bash
# Run every speed/scale benchmark that exists and the five accuracy benches; print their figures.
# Usage: benchmarks/run_all.sh [OUT_DIR]   (default runs/benchmarks; datasets from $TRAJFM_DATASETS or ../shared/datasets)
# The figures go to OUT_DIR/<name>.txt; copy the latest into benchmarks/README.md by hand, with date and machine.
set -u
cd "$(dirname "$0")/.."
OUT="${1:-runs/benchmarks}"
DATASETS="${TRAJFM_DATASETS:-../shared/datasets}"
mkdir -p "$OUT"
echo "# $(date -u '+%Y-%m-%d %H:%M UTC')  $(uname -m)  $(nproc) cpus  $(python --version 2>&1)" | tee "$OUT/machine.txt"
grep -m1 "model name" /proc/cpuinfo 2>/dev/null | tee -a "$OUT/machine.txt"

status=0
declare -A SCRIPT_ARGS=([bench_cluster]="--sizes 513,10000,100000")
for script in bench_load bench_rules_judge bench_llm_judge bench_llm_tolerant bench_cluster bench_report; do
  if [[ -f "benchmarks/$script.py" ]]; then
    echo "== $script"
    # shellcheck disable=SC2086  # the arguments are meant to split
    python "benchmarks/$script.py" ${SCRIPT_ARGS[$script]:-} 2>&1 | tee "$OUT/$script.txt" || status=1
  else
    echo "== $script: benchmarks/$script.py not present, skipped"
  fi
done

# Accuracy of the rules judge and the clustering on the bundled corpus's planted labels.
if [[ -f benchmarks/rules_vs_sidecar.py && -f traces/assetops/labels.jsonl ]]; then
  echo "== rules_vs_sidecar"
  python benchmarks/rules_vs_sidecar.py traces/assetops 2>&1 | tee "$OUT/rules_vs_sidecar.txt" || status=1
fi
if [[ -f benchmarks/cluster_vs_sidecar.py && -f traces/assetops/labels.jsonl ]]; then
  echo "== cluster_vs_sidecar"
  trajfm extract traces/assetops --out "$OUT/corpus-run" >/dev/null 2>&1 \
    && python benchmarks/cluster_vs_sidecar.py "$OUT/corpus-run" 2>&1 | tee "$OUT/cluster_vs_sidecar.txt" || status=1
fi

declare -A BENCH_PATHS=(
  [whowhen]="$DATASETS/who_and_when"
  [agentrx]="$DATASETS/agentrx"
  [trail]="$DATASETS/trail"
  [mast]="$DATASETS/mast_mad_human"
  [assetops]="traces/assetops"
)
for ds in whowhen agentrx trail mast assetops; do
  path="${BENCH_PATHS[$ds]}"
  if [[ -e "$path" ]]; then
    echo "== trajfm bench $ds"
    COLUMNS=200 trajfm bench "$ds" "$path" --out "$OUT/bench-$ds" 2>&1 | tee "$OUT/bench-$ds.txt" || status=1
  else
    echo "== trajfm bench $ds: $path not present, skipped"
  fi
done
exit $status
