"""The LLM cluster namer on the judge's client: retries under injected faults, a cache that makes re-runs free,
and --redact on what it sends (checked on what the endpoint received)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl
import pytest

from trajfm.clustering.embed import FakeEmbedder
from trajfm.clustering.fit import ClusterConfig, Item, cluster_items
from trajfm.clustering.naming import LlmNamer, NamerError
from trajfm.taxonomy import load_taxonomy
from trajfm.testing import EndpointConfig, Fault, LocalEndpoint

SECRET = "sk-live-0123456789abcdefghijKLMN"
WORDS = {
    "loop": ["retried", "same", "failing", "call", "again", "loop", "identical", "repeat"],
    "claim": ["claimed", "finished", "success", "despite", "missing", "result", "overstated", "report"],
    "syntax": ["malformed", "action", "syntax", "bracket", "parser", "rejected", "format", "quote"],
}


def _items(secret_in: str | None = None) -> list[Item]:
    rng = random.Random(3)
    items = []
    for f, words in WORDS.items():
        for i in range(14):
            desc = " ".join(rng.sample(words, 6))
            if f == secret_in:
                desc += f" using key {SECRET} for ops@example.com"
            items.append(Item(f"{f}{i}", f"{f.title()} family", desc))
    return items


def _name_reply(body: dict) -> str:
    user = body["messages"][-1]["content"]
    kw = user.split("Keywords: ")[1].split(",")[0].split("\n")[0]
    return json.dumps({"name": f"Family of {kw}", "definition": f"Failures about {kw}."})


def _cluster(namer: LlmNamer) -> pl.DataFrame:
    out = cluster_items(
        _items(),
        embedder=FakeEmbedder(),
        config=ClusterConfig(reducer="none", stability_rounds=2),
        taxonomy=load_taxonomy("mast"),
        namer=namer,
    )
    return out.clusters.filter(pl.col("cluster_id") >= 0)


def test_namer_completes_under_injected_faults_retries_and_a_rerun_is_served_from_its_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRAJFM_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-namer-key-5555555555555555")
    cache = tmp_path / "cache" / "namer_cache.sqlite"
    cfg = EndpointConfig(reply_fn=_name_reply, fault_rate=0.1, faults=("429", "500", "malformed"), seed=7,
                         retry_after_s=0.05)  # fmt: skip
    with LocalEndpoint(cfg) as ep:
        namer = LlmNamer(ep.url, "trajfm-test", cache_path=cache, backoff_base=0.01)
        first = _cluster(namer)
        faults = [r.fault for r in ep.requests if r.fault]
        assert faults, "the seeded draw injected no fault: the test would prove nothing"
        assert namer.stats["retries"] == len(faults) and namer.stats["calls"] == len(ep.requests)
        assert all(n.startswith("Family of ") for n in first["name"])
        n_requests = len(ep.requests)
        again = LlmNamer(ep.url, "trajfm-test", cache_path=cache, backoff_base=0.01)
        second = _cluster(again)
        assert len(ep.requests) == n_requests  # no call on the re-run
        assert again.stats == {"calls": 0, "retries": 0, "cache_hits": first.height}
    assert second["name"].to_list() == first["name"].to_list()
    info = namer.describe()
    assert info["retries"] == len(faults) and info["api_key_from"] == "OPENAI_API_KEY"
    assert "sk-namer-key" not in json.dumps(info)


def test_namer_gives_up_with_a_clear_error_after_its_retries() -> None:
    with LocalEndpoint(EndpointConfig(fault_rate=1.0, faults=("500",))) as ep:
        namer = LlmNamer(ep.url, "trajfm-test", max_retries=2, backoff_base=0.01)
        with pytest.raises(NamerError, match="HTTP 500"):
            _cluster(namer)
        assert len(ep.requests) == 3


def test_namer_redacts_what_it_sends(tmp_path: Path) -> None:
    bodies: list[str] = []

    def reply(body: dict) -> str:
        bodies.append(json.dumps(body))
        return _name_reply(body)

    for redact in (False, True):
        bodies.clear()
        with LocalEndpoint(EndpointConfig(reply_fn=reply)) as ep:
            namer = LlmNamer(ep.url, "trajfm-test", redact=redact)
            cluster_items(
                _items(secret_in="claim"),
                embedder=FakeEmbedder(),
                config=ClusterConfig(reducer="none", stability_rounds=2, mask_specifics=False),
                taxonomy=load_taxonomy("mast"),
                namer=namer,
            )
        sent = "\n".join(bodies)
        assert bodies
        if redact:
            assert SECRET not in sent and "ops@example.com" not in sent and "[REDACTED-" in sent
        else:  # the control: without --redact the secret really is in what the namer sends
            assert SECRET in sent


def test_cluster_stage_with_the_llm_namer_survives_faults_and_reruns_from_its_cache(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from trajfm.cli import app

    corpus = Path(__file__).resolve().parents[1] / "traces" / "assetops"
    run = tmp_path / "run"
    cli = CliRunner()
    res = cli.invoke(app, ["extract", str(corpus), "--out", str(run), "--limit", "300", "--no-progress"])
    assert res.exit_code == 0, res.output
    # The first three requests fail for sure (one of each kind), then 10% at random.
    cfg = EndpointConfig(reply_fn=_name_reply, fault_rate=0.1, faults=("429", "500", "malformed"), seed=1,
                         retry_after_s=0.05, script=[Fault("429"), Fault("500"), Fault("malformed")])  # fmt: skip
    args = ["cluster", str(run), "--namer", "llm", "--embedder", "fake", "--reducer", "none", "--llm-model",
            "trajfm-test"]  # fmt: skip
    with LocalEndpoint(cfg) as ep:
        res = cli.invoke(app, [*args, "--base-url", ep.url])
        assert res.exit_code == 0, res.output
        first = len(ep.requests)
        faults = sum(1 for r in ep.requests if r.fault)
        res = cli.invoke(app, [*args, "--base-url", ep.url])
        assert res.exit_code == 0, res.output
        assert len(ep.requests) == first  # the re-run is served from RUN/cache/namer_cache.sqlite
    namer = json.loads((run / "manifest.json").read_text())["stages"]["cluster"]["namer"]
    assert namer["cache_hits"] > 0 and namer["calls"] == 0
    assert faults >= 3 and first > faults  # faults were injected and retried through
    clusters = pl.read_parquet(run / "clusters.parquet").filter(pl.col("cluster_id") >= 0)
    assert clusters.height and all(n.startswith("Family of ") for n in clusters["name"])
