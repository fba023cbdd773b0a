"""The rules judge's version: a hash of the source files that decide its output.

`RULES_VERSION` is "rules-" + the first 12 hex digits of sha256 over the rules judge (`judges/rules.py`), every
module of `judges/detectors/` and its data files, read in sorted order. Any edit to a detector therefore changes
the version recorded in diagnoses.parquet and manifest.json, so two runs with equal versions ran the same rules
(an edit to a comment changes it too: a false "changed" is harmless, a false "same" is not).
"""

from __future__ import annotations

import hashlib
from importlib import resources

SOURCE_SUFFIXES = (".py", ".json", ".toml", ".txt", ".yaml", ".yml")


def rules_source_hash() -> str:
    h = hashlib.sha256()
    judges = resources.files("trajfm.judges")
    files = [judges / "rules.py"]
    detectors = judges / "detectors"
    stack = [detectors]
    while stack:
        folder = stack.pop()
        for item in folder.iterdir():
            if item.is_dir():
                if item.name != "__pycache__":
                    stack.append(item)
            elif item.name.endswith(SOURCE_SUFFIXES):
                files.append(item)
    base = str(judges)
    for f in sorted(files, key=lambda p: str(p)):
        h.update(str(f)[len(base) :].replace("\\", "/").encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
    return h.hexdigest()[:12]


RULES_VERSION = f"rules-{rules_source_hash()}"
