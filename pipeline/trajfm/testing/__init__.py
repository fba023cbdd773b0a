"""Test helpers that ship with trajfm: a local OpenAI-compatible endpoint, fake judges, synthetic traces.

Users can point the LLM judge at `trajfm serve-test-endpoint` to check their setup without spending anything;
tests use the same pieces through this public API.
"""

from trajfm.testing.endpoint import (
    FAULT_KINDS,
    STREAM_FAULTS,
    EndpointConfig,
    Fault,
    LocalEndpoint,
    deterministic_reply,
)
from trajfm.testing.fakes import AsyncScriptedJudge, ScriptedJudge, clean_diagnosis
from trajfm.testing.traces import synthetic_traces

__all__ = [
    "FAULT_KINDS",
    "STREAM_FAULTS",
    "AsyncScriptedJudge",
    "EndpointConfig",
    "Fault",
    "LocalEndpoint",
    "ScriptedJudge",
    "clean_diagnosis",
    "deterministic_reply",
    "synthetic_traces",
]
