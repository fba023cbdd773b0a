"""Build hook: the rules judge's hot modules compiled to C extensions with mypyc (issue 15: thousands of traces/s).

Everything else about the package is in pyproject.toml. `pip install .` and `pip install -e .` compile the modules
of `COMPILED` (mypy's mypyc, a build requirement) into extensions beside their .py files; Python imports an
extension before the source of the same name. The compiled modules give the same results as the source (the same
code, with its type annotations checked at run time), so the package works the same without them:

- `TRAJFM_PURE_PYTHON=1` at build time builds no extension (the pure-Python package);
- a failed compile (no C compiler, a mypyc error) is reported and leaves no extension, never a failed install;
- at run time, `TRAJFM_PURE_PYTHON=1`, or a source file edited after its extension was built, makes
  `trajfm.judges` import the source of every compiled module instead (`trajfm/judges/_compiled.py`), so an edit
  takes effect without a rebuild (`pip install -e .` again compiles it).

Which modules: the detectors and the judge's per-trace code. Left as source: `judges/detectors/__init__.py` and
`repetition.py`, which tests replace functions of at run time (a compiled caller would call the original), and
everything outside the rules judge.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tomllib
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
# The module list, read from the package without importing it (its dependencies need not be installed to build).
_spec = importlib.util.spec_from_file_location("_trajfm_compiled", ROOT / "pipeline/trajfm/judges/_compiled.py")
assert _spec is not None and _spec.loader is not None
_listing = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_listing)
COMPILED: tuple[str, ...] = _listing.COMPILED
source_path = _listing.source_path


class MypycBuildExt(build_ext):
    """build_ext that compiles the modules of `COMPILED` with mypyc (only here: the other setup.py commands, such as
    the metadata pip asks for first, need no type-check), and that reports a failed compile and removes what it
    built instead of failing the install: the compiled modules share one runtime library, so all or none."""

    def finalize_options(self) -> None:
        if any(ext.name == PLACEHOLDER_NAME for ext in self.distribution.ext_modules or ()):
            self.distribution.ext_modules = ext_modules()
        super().finalize_options()

    def run(self) -> None:
        if not self.extensions:
            return
        try:
            super().run()
            # Mark the build as newer than every source (trajfm.judges._compiled reads the times): an unchanged
            # extension is not rebuilt, nor one whose generated code a comment-only edit left unchanged.
            for ext in self.extensions:
                for base in {self.build_lib, str(ROOT / "pipeline")}:
                    built = Path(base) / self.get_ext_filename(ext.name)
                    if built.exists():
                        os.utime(built)
        except Exception as e:  # noqa: BLE001 (any compile failure falls back to the pure-Python package)
            print(f"trajfm: could not compile the rules judge with mypyc ({e}); using the pure-Python modules",
                  file=sys.stderr)  # fmt: skip
            for ext in self.extensions:
                for base in {self.build_lib, str(ROOT / "pipeline")}:
                    (Path(base) / self.get_ext_filename(ext.name)).unlink(missing_ok=True)
            self.extensions = []


# Third-party packages the compiled modules reach only through other trajfm modules: not analysed for the build
# (following polars and pyarrow takes minutes and gigabytes); `python -m mypy` still checks the package with them.
SKIPPED = ("polars", "pyarrow", "numpy", "pandas", "httpx", "httpcore", "orjson", "tenacity", "pydantic",
           "json_repair", "rich", "typer", "jinja2")  # fmt: skip


def _mypy_config() -> str:
    """The project's mypy settings (pyproject.toml), with the packages of `SKIPPED` not followed."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        conf = tomllib.load(f)["tool"]["mypy"]
    lines = ["[mypy]"]
    for key, value in conf.items():
        if key != "files":
            lines.append(f"{key} = {','.join(value) if isinstance(value, list) else value}")
    lines.append("cache_dir = build/mypyc_cache")  # its own: these options would invalidate `python -m mypy`'s cache
    lines += ["[mypy-" + ",".join(f"{p},{p}.*" for p in SKIPPED) + "]", "follow_imports = skip"]
    path = ROOT / "build" / "mypyc.ini"
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def ext_modules() -> list:  # type: ignore[type-arg]
    if os.environ.get("TRAJFM_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify

        return mypycify(
            ["--config-file", _mypy_config(), *(str(source_path(Path("pipeline"), m)) for m in COMPILED)],
            opt_level="3",
            group_name=_listing.GROUP,
        )  # fmt: skip
    except (Exception, SystemExit) as e:  # noqa: BLE001 (mypyc exits on a type error)
        print(f"trajfm: mypyc is unavailable or failed ({e}); using the pure-Python modules", file=sys.stderr)
        return []


# A placeholder that makes setuptools run build_ext (and build a platform wheel); `MypycBuildExt` replaces it with
# mypyc's extensions, or with none.
PLACEHOLDER_NAME = f"{_listing.GROUP}__mypyc"
PLACEHOLDER = [] if os.environ.get("TRAJFM_PURE_PYTHON") else [Extension(PLACEHOLDER_NAME, sources=[])]

setup(ext_modules=PLACEHOLDER, cmdclass={"build_ext": MypycBuildExt})
