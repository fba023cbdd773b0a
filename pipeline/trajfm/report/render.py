"""Turn figures, charts and the drill-down payload into one self-contained HTML file.

Safety contract (trace text is untrusted):
- Templates are rendered with jinja2 autoescape on, so every string from a trace, a judge or a cluster name is
  HTML-escaped in the markup.
- Data for scripts goes into `<script type="application/json">` blocks through `safe_json`, which escapes `<`,
  `>` and `&` (and U+2028/U+2029) as JSON `\\uXXXX` sequences: the block can never contain `</script>` or `<!--`,
  and `JSON.parse` gives the original strings back. The page script builds DOM with `textContent` only.
- Links to traces are fragment links (`#trace=` + percent-encoded id), never a URL taken from a trace.
Defence in depth: the page's Content-Security-Policy allows no network source at all and only the two inline
scripts whose sha256 it lists (the Vega bundle and the page script); charts use Vega's expression interpreter
(`ast: true`), so no `eval` is needed either.
Self-contained: CSS, the page script and the Vega/Vega-Lite/vega-embed bundle (from vl-convert, loaded once)
are inlined, so the file opens from disk with no network access.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import os
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup

VEGA_LITE_VERSION = "6.4"  # must match the Vega-Lite schema Altair writes (altair.SCHEMA_VERSION)


def clean_json(value: Any) -> Any:
    """Replace NaN/inf floats by None, recursively, so the output is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def safe_json(value: Any) -> str:
    """JSON that is safe to place inside a <script> element (see the module docstring)."""
    text = json.dumps(clean_json(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def bundle_cache_path(vl_convert_version: str) -> Path:
    """Where the built Vega bundle is kept between runs: $TRAJFM_CACHE_DIR, else $XDG_CACHE_HOME/trajfm, else
    ~/.cache/trajfm; one file per vl-convert and Vega-Lite version."""
    root = os.environ.get("TRAJFM_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "trajfm"
    )
    return Path(root) / f"vega-bundle-vlconvert{vl_convert_version}-vl{VEGA_LITE_VERSION}.js"


@functools.lru_cache(maxsize=1)
def vega_bundle() -> str:
    """vega + vega-lite + vega-embed as one script, from vl-convert (no network). Building it costs vl-convert
    several seconds (most of a cold report build), so it is kept on disk (`bundle_cache_path`) and built again
    only when that file is missing or unreadable."""
    import vl_convert

    path = bundle_cache_path(str(getattr(vl_convert, "__version__", "unknown")))
    try:
        kept = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        kept = ""
    if kept:
        return kept
    # vl-convert's stub marks `snippet` as required; without one it bundles the whole of vega (what we want).
    js = vl_convert.javascript_bundle(vl_version=VEGA_LITE_VERSION)  # type: ignore[call-arg]
    # The bundle is code, not data: a literal "</script" in it would end the element early. Inside JS strings
    # "<\/" means the same as "</".
    js = js.replace("</script", "<\\/script").replace("<!--", "<\\!--")
    try:
        from trajfm.runfolder import atomic_write_text

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, js)
    except OSError:
        pass  # an unwritable cache folder only means the next report builds the bundle again
    return js


def static_text(name: str) -> str:
    return (resources.files("trajfm.report") / "static" / name).read_text(encoding="utf-8")


def script_text(js: str) -> str:
    """Inline script text that cannot end its element early."""
    return js.replace("</script", "<\\/script").replace("<!--", "<\\!--")


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def _rate(r: dict[str, Any] | None) -> str:
    if not r or not r.get("of"):
        return "–"
    return f"{_pct(r['rate'])} ({r['n']}/{r['of']})"


def _ci(r: dict[str, Any] | None) -> str:
    if not r or r.get("ci_low") is None:
        return ""
    return f"95% CI {100 * r['ci_low']:.1f}–{100 * r['ci_high']:.1f}%"


def _num(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def trace_href(trace_id: str) -> str:
    return "#trace=" + quote(trace_id, safe="")


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("trajfm.report", "templates"),
        autoescape=True,  # every template here renders HTML
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # safe_json output is already safe for a <script> block; autoescaping it would corrupt the JSON.
    env.filters.update(
        pct=_pct,
        rate=_rate,
        ci=_ci,
        num=_num,
        trace_href=trace_href,
        script_json=lambda v: Markup(safe_json(v)),
    )
    return env


def csp_hash(script: str) -> str:
    """A CSP source expression allowing exactly this inline script."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def render_html(context: dict[str, Any]) -> str:
    env = environment()
    template = env.get_template("report.html.j2")
    page_js = script_text(static_text("report.js"))
    vega_js = vega_bundle()
    return template.render(
        **context,
        css=static_text("report.css"),
        page_js=Markup(page_js),
        vega_js=Markup(vega_js),
        # Only our two scripts may run: anything a payload managed to inject would be refused by the browser.
        script_hashes=f"{csp_hash(vega_js)} {csp_hash(page_js)}",
    )
