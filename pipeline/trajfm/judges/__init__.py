"""Judges: turn a `Trace` into a `Diagnosis`. See `base.py` for the protocol and `registry.py` for lookup."""

from trajfm.judges import _compiled

_compiled.use()  # before any compiled module is imported: compiled (mypyc) or source, see _compiled.py

from trajfm.judges.base import Diagnosis, Judge, ModeFinding, NovelMode  # noqa: E402

__all__ = ["Diagnosis", "Judge", "ModeFinding", "NovelMode"]
