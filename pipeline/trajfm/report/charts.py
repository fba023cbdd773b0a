"""The report's charts as Vega-Lite specs, built with Altair from the figures dict.

`build_charts(figures, map_points)` returns `{chart_name: vega-lite spec dict}`; the HTML renders each spec with
the inlined vega-embed bundle (see `render.py`) into `<div id="chart-NAME">`. Charts only read the figures, never
the tables, so a chart can show nothing that summary.json does not hold (except the 2-D map, whose points are
the novel modes themselves). Tooltips carry counts and 95% Wilson intervals.
"""

from __future__ import annotations

from typing import Any

import altair as alt

CATEGORY_COLOURS = ["#4C78A8", "#F58518", "#54A24B", "#B279A2", "#E45756", "#72B7B2"]
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


def _config(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """Shared styling. A chart drawn at the width of its card (`width="container"`) fits axis labels and
    legends inside that width, so nothing spills out of a card on a narrow window."""
    if getattr(chart, "width", None) == "container":
        chart = chart.properties(autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))
    return (
        chart.configure(font=FONT)
        .configure_view(stroke=None)
        .configure_axis(labelFontSize=11, titleFontSize=12, gridColor="#eceff3")
        .configure_legend(labelFontSize=11, titleFontSize=12, labelLimit=260)
        # Schema validation of the finished spec costs most of the report's build time; the specs are built from
        # fixed code, and the browser tests render every chart, so a wrong spec is caught there.
        .to_dict(validate=False)
    )


def _pct(v: float | None) -> float | None:
    return None if v is None else round(100 * v, 2)


# The two bars drawn per mode or category: how many traces have it, and its part of all flags raised.
_SHARES = (("share of traces (%)", "share_traces"), ("share of all flags (%)", "share_flags"))


def _share_bars(
    field: str,
    items: list[tuple[dict[str, Any], dict[str, Any]]],
    counts: list[tuple[str, str]],
    *,
    sort: list[str] | None = None,
    label_limit: int,
    step: int,
) -> dict[str, Any]:
    """Two horizontal bars per item (`_SHARES`), one row per item. `items` are (fields shown, figures with the
    share keys): the fields hold `field` (the row label) and what the tooltip shows before the measure; `counts`
    are (figure key, tooltip title) of the counts the tooltip shows after it."""
    rows = [
        {
            **fields,
            "measure": measure,
            "value": _pct(figures[key]) or 0.0,
            **{k: figures.get(k) for k, _ in counts},
        }
        for fields, figures in items
        for measure, key in _SHARES
    ]
    shown = list(items[0][0]) if items else [field]
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar(cornerRadiusEnd=2)
        .encode(
            y=alt.Y(
                f"{field}:N",
                sort=alt.Undefined if sort is None else sort,
                title=None,
                axis=alt.Axis(labelLimit=label_limit),
            ),
            yOffset="measure:N",
            x=alt.X("value:Q", title="%"),
            color=alt.Color(
                "measure:N",
                title=None,
                scale=alt.Scale(range=["#3182bd", "#9ecae1"]),
                legend=alt.Legend(orient="bottom"),
            ),
            tooltip=[
                *(alt.Tooltip(f"{f}:N") for f in shown),
                alt.Tooltip("measure:N"),
                alt.Tooltip("value:Q", format=".1f", title="%"),
                *(alt.Tooltip(f"{k}:Q", title=title) for k, title in counts),
            ],
        )
        .properties(width="container", height=alt.Step(step))
    )
    return _config(chart)


def taxonomy_chart(fig: dict[str, Any]) -> dict[str, Any]:
    """Checked modes only: a mode no verdict was given on has no rate, and the page lists it as "not checked"."""
    checked = [m for m in fig["taxonomy"]["modes"] if m.get("checked", True)]
    items = [
        ({"mode": f"{m['mode_id']} {m['name']}", "category": f"{m['category']} {m['category_name']}"}, m)
        for m in checked
    ]
    return _share_bars(
        "mode",
        items,
        [("n_traces", "traces with the mode"), ("n_checked", "traces where it was checked")],
        sort=[fields["mode"] for fields, _ in items],
        label_limit=220,
        step=11,
    )


def category_chart(fig: dict[str, Any]) -> dict[str, Any]:
    items = [({"category": f"{c['category']} {c['name']}"}, c) for c in fig["taxonomy"]["categories"]]
    return _share_bars(
        "category", items, [("n_flags", "flags"), ("n_traces", "traces")], label_limit=240, step=14
    )


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(c):02x}" for c in rgb)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def relative_luminance(hex_colour: str) -> float:
    """WCAG 2.x relative luminance of an sRGB colour."""

    def lin(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in _rgb(hex_colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    """WCAG contrast ratio of two colours (1..21); AA for normal text needs 4.5."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


HEAT_STOPS = ("#fbf8f4", "#fdd49e", "#fc8d59", "#d7301f", "#7f0000")
INKS = ("#111111", "#ffffff")


def heat_colour(t: float) -> str:
    """The fill for a share `t` in 0..1 of the largest share shown, interpolated between HEAT_STOPS."""
    t = min(1.0, max(0.0, t))
    pos = t * (len(HEAT_STOPS) - 1)
    i = min(int(pos), len(HEAT_STOPS) - 2)
    a, b = _rgb(HEAT_STOPS[i]), _rgb(HEAT_STOPS[i + 1])
    f = pos - i
    return _hex(tuple(x + (y - x) * f for x, y in zip(a, b, strict=True)))  # type: ignore[arg-type]


def ink_for(fill: str) -> str:
    """Dark or white text, whichever contrasts more with `fill` (one of them always reaches 4.5:1)."""
    return max(INKS, key=lambda ink: contrast_ratio(ink, fill))


def heatmap_columns(fig: dict[str, Any]) -> list[str]:
    """Modes shown as heatmap columns: checked and flagged on at least one trace (empty columns are dropped;
    the page lists the dropped ones)."""
    return [m["mode_id"] for m in fig["taxonomy"]["modes"] if m.get("checked", True) and m["n_traces"]]


def heatmap_chart(fig: dict[str, Any]) -> dict[str, Any]:
    """Per model and mode, the share of the model's traces with the mode. Colours are computed here, not by a
    Vega scale, so every cell's text colour can be chosen for WCAG AA contrast with its own fill."""
    names = {m["mode_id"]: m["name"] for m in fig["taxonomy"]["modes"]}
    columns = heatmap_columns(fig)
    cells = [
        (m["model"], mode_id, m["modes"][mode_id])
        for m in fig["models"]
        if m["n_diagnosed"]
        for mode_id in columns
        if mode_id in m["modes"] and m["modes"][mode_id]["of"]
    ]
    top = max((r["rate"] for _, _, r in cells), default=0.0) or 1.0
    rows = []
    for model, mode_id, r in cells:
        fill = heat_colour(r["rate"] / top)
        rows.append(
            {
                "model": model,
                "mode": mode_id,
                "mode_name": f"{mode_id} {names.get(mode_id, '')}".strip(),
                "rate": _pct(r["rate"]),
                "ci_low": _pct(r["ci_low"]),
                "ci_high": _pct(r["ci_high"]),
                "n": r["n"],
                "of": r["of"],
                "label": f"{round(100 * r['rate'])}",
                "fill": fill,
                "ink": ink_for(fill),
            }
        )
    models = [m["model"] for m in fig["models"] if m["n_diagnosed"]]
    base = alt.Chart(alt.Data(values=rows)).encode(
        x=alt.X(
            "mode:N", sort=columns, title="failure mode (hover for its name)", axis=alt.Axis(labelAngle=0)
        ),
        y=alt.Y("model:N", sort=models, title=None, axis=alt.Axis(labelLimit=320)),
    )
    rect = base.mark_rect(stroke="white", strokeWidth=1).encode(
        color=alt.Color("fill:N", scale=None),
        tooltip=[
            alt.Tooltip("model:N"),
            alt.Tooltip("mode_name:N", title="mode"),
            alt.Tooltip("rate:Q", format=".1f", title="rate %"),
            alt.Tooltip("ci_low:Q", format=".1f", title="95% CI low %"),
            alt.Tooltip("ci_high:Q", format=".1f", title="95% CI high %"),
            alt.Tooltip("n:Q", title="traces with mode"),
            alt.Tooltip("of:Q", title="traces where it was checked"),
        ],
    )
    text = base.mark_text(fontSize=11).encode(text="label:N", color=alt.Color("ink:N", scale=None))
    return _config((rect + text).properties(width=alt.Step(40), height=alt.Step(26)))


def completion_chart(fig: dict[str, Any]) -> dict[str, Any]:
    rows = [
        {
            "model": m["model"],
            "rate": _pct(m["completion"]["rate"]),
            "ci_low": _pct(m["completion"]["ci_low"]),
            "ci_high": _pct(m["completion"]["ci_high"]),
            "n": m["completion"]["n"],
            "of": m["completion"]["of"],
        }
        for m in fig["models"]
        if m["completion"]["of"]
    ]
    order = [r["model"] for r in rows]
    return _config(_rate_bars(rows, "model", order, "task completed (% of traces, judge)", "#4C78A8"))


def setup_chart(fig: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for s in fig["agent_setup"]:
        for measure, key in (("completed (judge)", "completion"), ("correct (source)", "source_correct")):
            r = s[key]
            if r["of"]:
                rows.append(
                    {
                        "setup": s["setup"],
                        "measure": measure,
                        "rate": _pct(r["rate"]),
                        "ci_low": _pct(r["ci_low"]),
                        "ci_high": _pct(r["ci_high"]),
                        "n": r["n"],
                        "of": r["of"],
                    }
                )
    base = alt.Chart(alt.Data(values=rows)).encode(
        y=alt.Y("setup:N", title=None),
        yOffset="measure:N",
    )
    bars = base.mark_bar(cornerRadiusEnd=2).encode(
        x=alt.X("rate:Q", title="% of traces", scale=alt.Scale(domain=[0, 100])),
        color=alt.Color(
            "measure:N",
            title=None,
            scale=alt.Scale(range=["#4C78A8", "#9ecae1"]),
            legend=alt.Legend(orient="bottom"),
        ),
        tooltip=_rate_tooltip("setup") + [alt.Tooltip("measure:N")],
    )
    rules = base.mark_rule(color="#333").encode(x="ci_low:Q", x2="ci_high:Q")
    return _config((bars + rules).properties(width="container", height=alt.Step(16)))


def _rate_tooltip(key: str) -> list[alt.Tooltip]:
    return [
        alt.Tooltip(f"{key}:N"),
        alt.Tooltip("rate:Q", format=".1f", title="%"),
        alt.Tooltip("ci_low:Q", format=".1f", title="95% CI low %"),
        alt.Tooltip("ci_high:Q", format=".1f", title="95% CI high %"),
        alt.Tooltip("n:Q", title="count"),
        alt.Tooltip("of:Q", title="of"),
    ]


def _rate_bars(
    rows: list[dict[str, Any]], key: str, order: list[str], title: str, colour: str
) -> alt.LayerChart:
    base = alt.Chart(alt.Data(values=rows)).encode(
        y=alt.Y(f"{key}:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
    )
    bars = base.mark_bar(color=colour, cornerRadiusEnd=2).encode(
        x=alt.X("rate:Q", title=title, scale=alt.Scale(domain=[0, 100])), tooltip=_rate_tooltip(key)
    )
    rules = base.mark_rule(color="#333").encode(x="ci_low:Q", x2="ci_high:Q", tooltip=_rate_tooltip(key))
    return (bars + rules).properties(width="container", height=alt.Step(20))


def families_chart(fig: dict[str, Any]) -> dict[str, Any]:
    rows = [
        {
            "family": f["name"],
            "size": f["size"],
            "share": _pct(f["share"]),
            "traces": f["n_traces"],
            "novel": "outliers" if f["is_outliers"] else ("novel" if f["is_novel"] else "near a known mode"),
        }
        for f in fig["novel"]["families"]
    ]
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar(cornerRadiusEnd=2)
        .encode(
            y=alt.Y("family:N", sort="-x", title=None, axis=alt.Axis(labelLimit=260)),
            x=alt.X("size:Q", title="novel-mode instances", axis=alt.Axis(tickMinStep=1, format="d")),
            color=alt.Color(
                "novel:N",
                title=None,
                legend=alt.Legend(orient="bottom"),
                scale=alt.Scale(
                    domain=["novel", "near a known mode", "outliers"], range=["#E45756", "#4C78A8", "#BAB0AC"]
                ),
            ),
            tooltip=[
                alt.Tooltip("family:N"),
                alt.Tooltip("size:Q"),
                alt.Tooltip("share:Q", format=".1f", title="share %"),
                alt.Tooltip("traces:Q"),
                alt.Tooltip("novel:N"),
            ],
        )
        .properties(width="container", height=alt.Step(20))
    )
    return _config(chart)


def map_chart(points: list[dict[str, Any]]) -> dict[str, Any]:
    chart = (
        alt.Chart(alt.Data(values=points))
        .mark_circle(opacity=0.7, stroke="white", strokeWidth=0.5)
        .encode(
            # novel modes at the same place (identical texts) are one point sized by how many they are
            size=alt.Size(
                "count:Q",
                title="novel modes at the point",
                scale=alt.Scale(range=[30, 900]),
                legend=alt.Legend(orient="bottom"),
            ),
            x=alt.X(
                "x:Q",
                title=None,
                scale=alt.Scale(zero=False),
                axis=alt.Axis(labels=False, ticks=False, grid=False),
            ),
            y=alt.Y(
                "y:Q",
                title=None,
                scale=alt.Scale(zero=False),
                axis=alt.Axis(labels=False, ticks=False, grid=False),
            ),
            color=alt.Color(
                "family:N",
                title="family",
                scale=alt.Scale(scheme="tableau20"),
                legend=alt.Legend(orient="bottom", columns=2, symbolLimit=40, labelLimit=300),
            ),
            tooltip=[
                alt.Tooltip("title:N"),
                alt.Tooltip("family:N"),
                alt.Tooltip("count:Q", title="novel modes here"),
                alt.Tooltip("models:Q", title="agent models"),
                alt.Tooltip("trace:N", title="first trace"),
                alt.Tooltip("probability:Q", format=".2f", title="mean membership probability"),
            ],
        )
        .properties(width="container", height=400)
    )
    return _config(chart.interactive())


def cooccurrence_chart(fig: dict[str, Any]) -> dict[str, Any]:
    co = fig["cooccurrence"]
    rows = [dict(c, share=_pct(c["share_of_a"])) for c in co["cells"]]
    base = alt.Chart(alt.Data(values=rows)).encode(
        x=alt.X("b:N", sort=co["modes"], title="with mode", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("a:N", sort=co["modes"], title="traces with mode"),
    )
    rect = base.mark_rect(stroke="white").encode(
        color=alt.Color(
            "share:Q", title="% of row's traces", scale=alt.Scale(scheme="blues", domain=[0, 100])
        ),
        tooltip=[
            alt.Tooltip("a:N", title="row mode"),
            alt.Tooltip("b:N", title="column mode"),
            alt.Tooltip("n:Q", title="traces with both"),
            alt.Tooltip("share:Q", format=".1f", title="% of row"),
        ],
    )
    text = (
        base.mark_text(fontSize=9)
        .transform_filter("datum.n > 0")
        .encode(text="n:Q", color=alt.condition("datum.share > 60", alt.value("white"), alt.value("#333")))
    )
    return _config((rect + text).properties(width=alt.Step(30), height=alt.Step(22)))


def root_cause_chart(fig: dict[str, Any]) -> dict[str, Any]:
    rows = [
        {"position": f"{round(100 * b['lo'])}–{round(100 * b['hi'])}", "order": i, "n": b["n"]}
        for i, b in enumerate(fig["root_cause"]["bins"])
    ]
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar(color="#B279A2", cornerRadiusEnd=2)
        .encode(
            x=alt.X(
                "position:O",
                sort=alt.SortField("order"),
                title="position of the root-cause step in the trace (% of the way, start → end)",
                axis=alt.Axis(labelAngle=0),
            ),
            y=alt.Y("n:Q", title="traces", axis=alt.Axis(tickMinStep=1, format="d")),
            tooltip=[alt.Tooltip("position:O", title="position %"), alt.Tooltip("n:Q", title="traces")],
        )
        .properties(width=alt.Step(48), height=200)
    )
    return _config(chart)


def build_charts(fig: dict[str, Any], map_points: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every chart that has data; a chart with nothing to draw is left out (the page says so instead)."""
    charts: dict[str, dict[str, Any]] = {}
    if not fig["overview"]["n_diagnosed"]:
        return charts  # nothing was diagnosed: the page shows its empty state instead of empty axes
    charts["taxonomy"] = taxonomy_chart(fig)
    charts["categories"] = category_chart(fig)
    if any(m["n_diagnosed"] for m in fig["models"]) and heatmap_columns(fig):
        charts["heatmap"] = heatmap_chart(fig)
    if any(m["completion"]["of"] for m in fig["models"]):
        charts["completion"] = completion_chart(fig)
    if any(s["completion"]["of"] or s["source_correct"]["of"] for s in fig["agent_setup"]):
        charts["setup"] = setup_chart(fig)
    if fig["root_cause"]["n_with_root_cause"] > fig["root_cause"]["n_outside_trace"]:
        charts["root_cause"] = root_cause_chart(fig)
    if fig["cooccurrence"]["modes"]:
        charts["cooccurrence"] = cooccurrence_chart(fig)
    if fig["novel"]["clustered"] and fig["novel"]["families"]:
        charts["families"] = families_chart(fig)
        if map_points:
            charts["novel_map"] = map_chart(map_points)
    return charts
