"""What a trace corpus says about itself: a `trajfm-corpus.toml` file in the folder of the traces or above it.

Contract: `corpus_declarations(inputs)` looks in every input folder (or an input file's folder) and its parent
folders for `trajfm-corpus.toml` and returns one record per file found: `{"path", "synthetic", "description",
"generator"}`, or `{"path", "error"}` when the file cannot be read (a broken declaration is reported, never
fatal). Extract records the list in manifest.json; the report shows a banner when a corpus declares itself
synthetic, so figures from planted failures are never read as findings about real agents. The loader never
reads the file as a trace (`.toml` files are skipped).

File format (TOML): `synthetic = true`, `description = "..."`, `generator = "..."` (all optional).
"""

from __future__ import annotations

import contextlib
import tomllib
from pathlib import Path
from typing import Any

DECLARATION_NAME = "trajfm-corpus.toml"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return {"path": str(path), "error": f"could not read {path}: {exc}"}
    return {
        "path": str(path),
        "synthetic": bool(data.get("synthetic", False)),
        "description": str(data.get("description", "")),
        "generator": str(data.get("generator", "")),
    }


def corpus_declarations(inputs: list[Path]) -> list[dict[str, Any]]:
    found: dict[Path, dict[str, Any]] = {}
    for raw in inputs:
        p = Path(raw).absolute()
        start = p if p.is_dir() else p.parent
        for folder in (start, *start.parents):
            f = folder / DECLARATION_NAME
            if f.is_file():
                if f not in found:
                    found[f] = _read(f)
                    # Show the path as the user would type it when it is under the working folder.
                    with contextlib.suppress(ValueError):
                        found[f]["path"] = str(f.relative_to(Path.cwd()))
                break
    return list(found.values())
