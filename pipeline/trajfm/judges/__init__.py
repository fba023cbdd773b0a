"""Judges: turn a `Trace` into a `Diagnosis`. See `base.py` for the protocol and `registry.py` for lookup."""

from trajfm.judges.base import Diagnosis, Judge, ModeFinding, NovelMode

__all__ = ["Diagnosis", "Judge", "ModeFinding", "NovelMode"]
