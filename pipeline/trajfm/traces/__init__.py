"""Reading agent traces from the formats users have into one normalized model (`Trace`, `Step`)."""

from trajfm.traces.model import Step, Trace, StepKind

__all__ = ["Step", "StepKind", "Trace"]
