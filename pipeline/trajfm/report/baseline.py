"""`trajfm report RUN --baseline OLD_RUN`: how each failure mode and family changed since an earlier run.

`compare(current, baseline)` takes the figures of both runs (`compute_figures`) and returns, per mode and per
family, the share of traces before and now, the change in points with a 95% Newcombe interval, and a status:
- `new`: absent before (0 traces, or no such family), present now;
- `gone`: present before, absent now;
- `grown` / `shrunk`: the interval of the change lies wholly above / below 0;
- `steady`: the change is within noise (the interval includes 0); `not comparable`: the mode was not checked
  in one of the runs.
Families are matched by name (ignoring case and a trailing parenthetical): cluster ids are not stable across
runs. Rows are ranked new, grown, shrunk, gone, steady, not comparable; inside a status by the current run's
excess failures (impact), then by the size of the change.
"""

from __future__ import annotations

from typing import Any

from trajfm.report.families import base_name
from trajfm.report.stats import diff_interval

STATUS_ORDER = ("new", "grown", "shrunk", "gone", "steady", "not comparable")


def _change(
    kind: str, ident: Any, name: str, now: tuple[int, int], before: tuple[int, int], excess: Any
) -> dict:
    (k1, n1), (k0, n0) = now, before
    if not n1 or not n0:
        status = "not comparable"
        d = lo = hi = None
    else:
        d, lo, hi = diff_interval(k1, n1, k0, n0)
        assert d is not None and lo is not None and hi is not None
        if k0 == 0 and k1 > 0:
            status = "new"
        elif k1 == 0 and k0 > 0:
            status = "gone"
        elif lo > 0:
            status = "grown"
        elif hi < 0:
            status = "shrunk"
        else:
            status = "steady"
    return {
        "kind": kind,
        "id": ident,
        "name": name,
        "status": status,
        "now": {"n": k1, "of": n1, "rate": k1 / n1 if n1 else None},
        "before": {"n": k0, "of": n0, "rate": k0 / n0 if n0 else None},
        "change_points": None if d is None else 100 * d,
        "ci_low": None if lo is None else 100 * lo,
        "ci_high": None if hi is None else 100 * hi,
        "excess_failed_now": excess,
    }


def compare(current: dict[str, Any], baseline: dict[str, Any], baseline_name: str) -> dict[str, Any]:
    rows = []
    old_modes = {m["mode_id"]: m for m in baseline["taxonomy"]["modes"]}
    for m in current["taxonomy"]["modes"]:
        old = old_modes.get(m["mode_id"], {"n_traces": 0, "n_checked": 0})
        rows.append(
            _change(
                "mode",
                m["mode_id"],
                m["name"],
                (m["n_traces"], m["n_checked"]),
                (old["n_traces"], old["n_checked"]),
                m.get("excess_failed"),
            )
        )
    n_now = current["overview"]["n_diagnosed"]
    n_before = baseline["overview"]["n_diagnosed"]

    def families(fig: dict[str, Any]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for f in fig["novel"].get("families", []):
            if not f["is_outliers"]:
                key = base_name(f["name"]).casefold()
                if key in out:  # two families of one name in one run: count them together
                    out[key] = dict(out[key], n_traces=out[key]["n_traces"] + f["n_traces"])
                else:
                    out[key] = f
        return out

    now_f, before_f = families(current), families(baseline)
    for key in list(now_f) + [k for k in before_f if k not in now_f]:
        f, old = now_f.get(key), before_f.get(key)
        ref = f or old
        assert ref is not None
        rows.append(
            _change(
                "family",
                ref["cluster_id"] if f else None,
                base_name(ref["name"]),
                (f["n_traces"] if f else 0, n_now),
                (old["n_traces"] if old else 0, n_before),
                f.get("excess_failed") if f else None,
            )
        )
    rows.sort(
        key=lambda r: (
            STATUS_ORDER.index(r["status"]),
            -(r["excess_failed_now"] or 0),
            -abs(r["change_points"] or 0),
            r["kind"],
            str(r["name"]),
        )
    )
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in STATUS_ORDER}
    return {
        "baseline": baseline_name,
        "n_traces_before": baseline["overview"]["n_traces"],
        "n_diagnosed_before": n_before,
        "completion_before": baseline["overview"]["completion"],
        "counts": counts,
        "changes": rows,
    }
