"""The report in a real browser: headless Chromium opens report.html from file://, with no network requests and
no console errors; every chart renders; the drill-down filters; hostile trace text never executes.

Skips with a reason when no Chromium is installed (CI's .ci/run installs Debian's `chromium`). Screenshots go
to $TRAJFM_SCREENSHOTS when set, else to pytest's tmp folder.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from trajfm.report import build_report

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "report"))
from cdp import Browser, find_chromium  # noqa: E402
from make_run import HOSTILE, make_run  # noqa: E402

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[1]

ALL_CHARTS_DONE = """(() => {
  const cs = Array.from(document.querySelectorAll('.chart'));
  return cs.every(c => c.dataset.rendered === 'true' || c.textContent.includes('could not be drawn'));
})()"""
CHART_STATE = """Array.from(document.querySelectorAll('.chart')).map(c => ({
  id: c.id, rendered: c.dataset.rendered === 'true', marks: c.querySelectorAll('svg, canvas').length,
  paths: c.querySelectorAll('svg path, svg rect, svg circle, svg text').length}))"""
ROWS = "Array.from(document.querySelectorAll('#trace-list tbody tr')).map(r => r.dataset.trace)"
# Elements a payload would create if it were parsed as markup instead of shown as text.
INJECTED = """document.querySelectorAll(
  'img, iframe, object, embed, [onerror], [onload], a[href^="javascript:"], main svg[onload]').length"""


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip(
            "no Chromium found (install Debian's `chromium`, or set TRAJFM_CHROMIUM to a browser binary)"
        )
    return path


def _shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("TRAJFM_SCREENSHOTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    return out


def _select(b: Browser, select_id: str, value: str) -> list[str]:
    b.evaluate(
        f"(() => {{ const s = document.getElementById({json.dumps(select_id)}); s.value = {json.dumps(value)};"
        " s.dispatchEvent(new Event('change')); return s.value; })()"
    )
    return b.evaluate(ROWS)


def _hover_first_point(b: Browser, chart_id: str) -> str:
    box = b.evaluate(
        f"(() => {{ const c = document.getElementById({json.dumps(chart_id)}); c.scrollIntoView({{block: 'center', behavior: 'instant'}});"
        " const p = c.querySelector('.mark-symbol path'); const r = p.getBoundingClientRect();"
        " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
    )
    for dx in (0, 1):
        b.send("Input.dispatchMouseEvent", type="mouseMoved", x=box[0] + dx, y=box[1])
        b.pump(0.2)
    return b.evaluate(
        "(() => { const t = document.getElementById('vg-tooltip-element');"
        " return t && t.classList.contains('visible') ? t.textContent : ''; })()"
    )


def _open_clean(b: Browser, html: Path) -> list[dict]:
    b.open(html.resolve().as_uri())
    b.wait_for(ALL_CHARTS_DONE, timeout=60)
    b.pump(0.5)  # let late errors or requests arrive
    charts = b.evaluate(CHART_STATE)
    assert b.errors() == []
    assert b.requests() == [html.resolve().as_uri()], "the report must make no request besides its own file"
    assert b.dialogs() == [] and b.evaluate("window.__trajfm_dialogs") == []
    for c in charts:
        assert c["rendered"] and c["marks"] >= 1 and c["paths"] > 3, c
    return charts


def _check_drilldown(b: Browser, models: list[str], modes: list[str]) -> None:
    all_rows = b.evaluate(ROWS)
    assert all_rows
    shown_ids = b.evaluate(
        "Array.from(document.querySelectorAll('#trace-list td.tid')).map(td => td.textContent)"
    )
    assert len(set(shown_ids)) == len(shown_ids) == len(all_rows), "every listed trace id reads differently"
    by_model = _select(b, "f-model", models[0])
    assert 0 < len(by_model) < len(all_rows)
    assert all(
        b.evaluate(
            f"document.querySelector('#trace-list tbody tr[data-trace=\"' + CSS.escape({json.dumps(r)}) + '\"] td:nth-child(2)').textContent"
        )
        == models[0]
        for r in by_model[:5]
    )
    _select(b, "f-model", "")
    by_mode = _select(b, "f-mode", modes[0])
    assert 0 < len(by_mode) < len(all_rows) and by_mode != by_model
    _select(b, "f-mode", "")
    assert b.evaluate(ROWS) == all_rows
    if b.evaluate("!document.getElementById('more').hidden"):
        before = len(all_rows)
        b.evaluate("document.getElementById('more').click()")
        assert len(b.evaluate(ROWS)) > before
    # Open a trace from the list: its steps show, evidence steps are highlighted.
    b.evaluate("document.querySelector('#trace-list tbody tr').click()")
    assert b.evaluate("document.querySelectorAll('#trace-detail li.step').length") > 0


def test_fixture_report_renders_offline_and_hostile_text_stays_inert(chromium: str, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_traces=24)
    html = build_report(run).html_path
    with Browser(chromium) as b:
        charts = _open_clean(b, html)
        assert {c["id"] for c in charts} >= {
            "chart-taxonomy",
            "chart-heatmap",
            "chart-novel_map",
            "chart-cooccurrence",
        }
        assert b.evaluate(INJECTED) == 0
        # Tooltips on the map: moving the mouse onto a point shows vega's tooltip with the point's title.
        tip = _hover_first_point(b, "chart-novel_map")
        assert "family" in tip and "trace" in tip and "probability" in tip, tip
        assert b.evaluate(INJECTED) == 0  # tooltips show hostile names as text too
        _check_drilldown(b, ["model-alpha"], ["1.1"])
        by_family = _select(b, "f-cluster", "0")
        in_family = b.evaluate(
            "JSON.parse(document.getElementById('trajfm-traces').textContent).traces"
            ".filter(t => t.novel.some(n => n.cluster === 0)).map(t => t.id)"
        )
        assert by_family and sorted(by_family) == sorted(in_family)
        _select(b, "f-cluster", "")
        # Open every trace (each holds payloads in task, steps, answer, summary, evidence): none may execute.
        ids = b.evaluate(
            "Array.from(document.querySelectorAll('#trace-list tbody tr')).map(r => r.dataset.trace)"
        )
        shown = ""
        for tid in ids:
            b.evaluate(f"location.hash = '#trace=' + encodeURIComponent({json.dumps(tid)})")
            b.pump(0.05)
            shown += b.evaluate("document.getElementById('trace-detail').textContent")
        b.pump(0.5)
        for payload in HOSTILE:
            assert payload in shown, f"payload should be shown as text: {payload}"
        assert b.evaluate(INJECTED) == 0
        assert b.dialogs() == [] and b.evaluate("window.__trajfm_dialogs") == []
        assert b.errors() == []
        assert b.requests() == [html.resolve().as_uri()]
        # A feedback link opens its trace in the drill-down.
        b.evaluate("document.querySelector('#feedback a[href^=\"#trace=\"]').click()")
        b.pump(0.3)
        assert b.evaluate("document.querySelectorAll('#trace-detail li.step.ev').length") > 0
        # Defence in depth: even a script element that got into the page would not run (CSP lists two hashes).
        b.evaluate(
            "(() => { const s = document.createElement('script'); s.textContent = 'window.__injected = 1';"
            " document.body.appendChild(s); })()"
        )
        b.pump(0.2)
        assert b.evaluate("window.__injected === undefined")
        assert any("Content Security Policy" in e for e in b.errors())
        b.screenshot(_shots(tmp_path) / "report_fixture.png")
        b.evaluate("document.getElementById('traces').scrollIntoView()")
        b.screenshot(_shots(tmp_path) / "report_fixture_drilldown.png", full_page=False)


def test_report_without_clusters_renders_with_a_note(chromium: str, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_traces=9, with_clusters=False)
    html = build_report(run).html_path
    with Browser(chromium) as b:
        charts = _open_clean(b, html)
        assert "chart-novel_map" not in {c["id"] for c in charts}
        assert "cluster stage was not run" in b.evaluate("document.getElementById('no-clusters').textContent")


def test_report_of_an_empty_run_has_no_errors(chromium: str, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_traces=0)
    html = build_report(run).html_path
    with Browser(chromium) as b:
        charts = _open_clean(b, html)
        assert charts == []  # no empty axes, no all-orange heatmap
        state = b.evaluate("document.getElementById('empty-state').textContent")
        assert "Nothing to report" in state and "no traces" in state
        assert b.evaluate("document.getElementById('empty-state').getBoundingClientRect().height") > 0
        assert b.evaluate("document.getElementById('scorecard')") is None
        assert b.evaluate(ROWS) == []


def test_scorecard_and_fix_first_render(chromium: str, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_traces=24)
    result = build_report(run)
    s = result.summary
    with Browser(chromium) as b:
        _open_clean(b, result.html_path)
        rows = b.evaluate(
            "Array.from(document.querySelectorAll('#scorecard-table tbody tr')).map(r => "
            "Array.from(r.cells).map(c => c.textContent.trim()))"
        )
        models = [m for m in s["models"] if m["n_diagnosed"]]
        assert [r[0] for r in rows] == [m["model"] for m in models]
        for r, m in zip(rows, models, strict=True):
            assert r[1].startswith(f"{m['readiness']['score']:.1f}")
            assert r[2] == ("yes" if m["readiness"]["meets"] else "no")
        cards = b.evaluate(
            "Array.from(document.querySelectorAll('#fix-first article.fx')).map(a => a.querySelector('h3').textContent)"
        )
        assert len(cards) == len(s["fix_first"]) > 0
        for text, c in zip(cards, s["fix_first"], strict=True):
            assert c["name"] in text
        # A card's evidence link opens its trace in the drill-down.
        b.evaluate("document.querySelector('#fix-first a[href^=\"#trace=\"]').click()")
        b.pump(0.3)
        assert b.evaluate("document.querySelectorAll('#trace-detail li.step').length") > 0
        assert b.errors() == []


def test_not_checked_modes_are_labelled(chromium: str, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_traces=24)
    s = build_report(run).summary
    unchecked = [m["mode_id"] for m in s["taxonomy"]["modes"] if not m["checked"]]
    assert unchecked == ["1.4", "2.3"]  # the fixture's judge never checks these
    with Browser(chromium) as b:
        _open_clean(b, run / "report.html")
        labelled = b.evaluate(
            "Array.from(document.querySelectorAll('#not-checked .not-checked')).map(e => e.dataset.mode)"
        )
        assert labelled == unchecked
        for mode_id in unchecked:
            row = b.evaluate(
                f"document.querySelector('#modes-table tr[data-mode=\"{mode_id}\"]').textContent"
            )
            assert "not checked" in row and "0.0%" not in row
        # ...and they are not heatmap columns drawn as 0%.
        columns = b.evaluate(
            "Array.from(document.querySelectorAll('#chart-heatmap .role-axis-label text')).map(t => t.textContent)"
        )
        assert columns and not set(unchecked) & set(columns)


# Every element that holds a card's content; none may be wider than itself at a 900-px window.
OVERFLOW = """Array.from(document.querySelectorAll(
  'section, .card, .fx, .fb, .chart, .judge-note, .banner, .tablewrap, details.family'))
  .filter(e => e.getClientRects().length && e.scrollWidth > e.clientWidth + 1)
  .map(e => (e.id || e.className) + ': ' + e.scrollWidth + ' > ' + e.clientWidth)"""


def test_nothing_overflows_its_card_at_900px(chromium: str, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_traces=30)
    html = build_report(run).html_path
    with Browser(chromium, width=900, height=1000) as b:
        charts = _open_clean(b, html)
        assert {c["id"] for c in charts} >= {
            "chart-taxonomy",
            "chart-heatmap",
            "chart-novel_map",
            "chart-families",
        }
        b.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        b.pump(0.3)
        assert b.evaluate("document.documentElement.clientWidth") <= 900
        assert b.evaluate(OVERFLOW) == []
        assert b.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def _luminance(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)

    def lin(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(int(h[i : i + 2], 16)) for i in (0, 2, 4))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_every_heatmap_cell_has_readable_text(chromium: str, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_traces=60, hostile=False)
    html = build_report(run).html_path
    with Browser(chromium) as b:
        _open_clean(b, html)
        # The cells and their labels as the browser drew them: one rect and one text per (model, mode), in order.
        cells = b.evaluate(
            "Array.from(document.querySelectorAll('#chart-heatmap .mark-rect.role-mark path')).map(p => p.getAttribute('fill'))"
        )
        texts = b.evaluate(
            "Array.from(document.querySelectorAll('#chart-heatmap .mark-text.role-mark text')).map(t => "
            "[t.getAttribute('fill'), t.textContent])"
        )
    assert len(cells) == len(texts) > 20
    ratios = [_contrast(fill, ink) for fill, (ink, label) in zip(cells, texts, strict=True) if label]
    assert len(ratios) > 20
    assert min(ratios) >= 4.5, sorted(ratios)[:5]
    # The fills span the scale, from the palest to the darkest cell (the check is not passed by one flat colour).
    assert len(set(cells)) > 5


def _bundled_corpus() -> Path | None:
    path = REPO / "traces"
    if importlib.util.find_spec("trajfm.extract") is None or not any(path.glob("assetops/*")):
        return None
    return path


@pytest.mark.slow
def test_bundled_run_report_in_browser(chromium: str, tmp_path: Path) -> None:
    corpus = _bundled_corpus()
    if corpus is None:
        pytest.skip("the bundled corpus (traces/assetops) or trajfm.extract is not available")
    from trajfm.orchestrate import run_pipeline

    result = run_pipeline([corpus], tmp_path / "bundled")
    summary = result.report.summary
    assert summary["overview"]["n_traces"] == 881
    with Browser(chromium) as b:
        _open_clean(b, result.report.html_path)
        models = [m["model"] for m in summary["models"]]
        modes = [m["mode_id"] for m in summary["taxonomy"]["modes"] if m["n_traces"]]
        _check_drilldown(b, models, modes)
        b.screenshot(_shots(tmp_path) / "report_bundled.png")
