"""The terminal summary `trajfm cluster` prints: counts, outliers, stability, and one row per cluster."""

from __future__ import annotations

from rich.console import Console

from trajfm.clustering.fit import ClusterOutcome
from trajfm.safetext import visible


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def print_summary(outcome: ClusterOutcome, console: Console) -> None:
    m = outcome.manifest
    counts, out, stab = m["counts"], m["outliers"], m["stability"]
    console.print(
        f"{m['method']} on {counts['items']} novel modes ({counts['distinct_texts']} distinct texts, text={m['text']}, "
        f"seed={m['seed']}): {counts['clusters']} clusters, {counts['novel_clusters']} not covered by "
        f"{m['novelty']['taxonomy']}",
        highlight=False,
    )
    line = f"outliers: {out['count']} ({out['share']:.1%})"
    if out["assign_outliers"]:
        line += f"; {out['assigned']} attached by --assign-outliers, {out['count_after_assignment']} left"
    console.print(line, highlight=False)
    if "partition_ari" in stab:
        console.print(
            f"partition stability (mean adjusted Rand over {stab['rounds']} subsamples of {stab['fraction']:.0%}): "
            f"{stab['partition_ari']:.3f} (min {stab['ari_min']:.3f})",
            highlight=False,
        )
    else:
        console.print(f"stability: {stab.get('skipped')}", highlight=False)
    # Plain lines rather than a table: readable at any terminal width and easy to grep.
    console.print(
        "  id   size  share  stab.  mode  sim.  novel  new  name [keywords]", highlight=False, markup=False
    )
    for r in outcome.clusters.iter_rows(named=True):
        new = r["new_since_baseline"]
        novel = "-" if r["is_novel"] is None else ("yes" if r["is_novel"] else "no")
        console.print(
            f"{r['cluster_id']:>4} {r['size']:>6} {r['share']:>6.1%} {_fmt(r['stability']):>6} "
            f"{r['nearest_mode'] or '-':>5} {_fmt(r['similarity']):>5} {novel:>6} "
            f"{'-' if new is None else ('yes' if new else 'no'):>4}  {visible(r['name'])} "
            f"[{visible(', '.join(r['keywords'][:4]))}]",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
