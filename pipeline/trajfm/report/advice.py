"""Advice for the novel families on the "fix first" list: the nearest known mode's, or, with `trajfm report
--advice llm`, written for the family by an LLM.

Contract:
- `nearest_mode_advice(taxonomy, family, names)`: (advice, where it comes from): the suggestion of the family's
  nearest known mode, else a generic next step that says no mode is near.
- `LlmAdviser`: one chat request per family through the project's client (`judges/client.py`: endpoint from
  --base-url / --llm-model or the environment, key only from TRAJFM_API_KEY / OPENAI_API_KEY, retries with
  backoff), temperature 0, asking for `{"advice": ...}` given the family's name, definition, keywords, example
  descriptions and its nearest known mode with that mode's advice. Replies are cached in
  RUN/cache/advice_cache.json (key: a versioned prefix and the sha256 of model and messages), so re-writing the
  report costs no calls; `redact` applies the judge's --redact to what is sent.
- A family the LLM could not advise on (the endpoint still failing after its retries, a reply with no advice)
  keeps the nearest-mode advice, and its card says why: never silent. A missing model or endpoint is a
  `UsageError` before any work.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trajfm.clustering.naming import LlmHelper
from trajfm.errors import BackendError, ParseError, UsageError
from trajfm.judges.client import BACKOFF_BASE_S, ChatRequest
from trajfm.judges.render import redact as redact_text
from trajfm.judges.reply import extract_json_object
from trajfm.taxonomy import Taxonomy

ADVICE_CHOICES = ("nearest", "llm")
CACHE_VERSION = "trajfm-advice-v1"
_SYSTEM = (
    "You advise the developers of an AI agent. You get one family of failures found in the agent's runs: its "
    "name, definition, keywords and a few example descriptions, and the closest failure mode of a known taxonomy "
    'with that mode\'s advice. Reply with only a JSON object {"advice": ...}: one to three sentences saying what '
    "to change in the agent (its prompt, its tools, its checks) so that this failure stops; be specific to the "
    "family, do not restate the failure."
)


def nearest_mode_advice(taxonomy: Taxonomy, family: dict[str, Any], names: dict[str, str]) -> tuple[str, str]:
    """Advice for a family: its nearest known mode's suggestion, saying so; else a generic next step."""
    near = family.get("nearest_mode")
    if near:
        try:
            suggestion = taxonomy.mode(near).suggestion
        except KeyError:
            suggestion = ""
        if suggestion:
            return suggestion, f"advice of the nearest known mode, {near} {names.get(near, '')}".rstrip()
    return (
        "No known mode is close to this family: read the example traces, then add a check for this pattern to "
        "the agent (or its prompt) and re-run the traces.",
        "generic advice: no known mode is near (LLM-written advice: trajfm report --advice llm)",
    )


@dataclass(frozen=True)
class AdviceOptions:
    """`trajfm report --advice llm` with its endpoint (None: the environment's) and --redact."""

    base_url: str | None = None
    model: str | None = None
    redact: bool = False


def write_family_advice(fig: dict[str, Any], adviser: LlmAdviser) -> None:
    """Replace the nearest-mode advice of the novel-family cards on the fix-first list with the adviser's."""
    families = {f["cluster_id"]: f for f in fig["novel"].get("families", [])}
    for card in fig["fix_first"]:
        family = families.get(card["id"]) if card["kind"] == "family" else None
        if family is None:
            continue
        examples = [e["description"] for e in family.get("examples", []) if e.get("description")]
        card["advice"], card["advice_from"] = adviser.advise(
            {**family, "example_texts": examples}, (card["advice"], card["advice_from"])
        )


class LlmAdviser(LlmHelper):
    """Writes advice for novel families through an OpenAI-compatible endpoint (see the module docstring)."""

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        *,
        redact: bool = False,
        cache_path: Path | None = None,
        max_retries: int = 4,
        backoff_base: float = BACKOFF_BASE_S,
        timeout_s: float = 60.0,
    ) -> None:
        super().__init__(
            model, base_url, who="--advice llm", timeout_s=timeout_s, max_retries=max_retries,
            backoff_base=backoff_base, refused=lambda why: UsageError(f"{why}; or use --advice nearest"),
        )  # fmt: skip
        self.redact = redact
        self.cache_path = cache_path
        self.stats["failed"] = 0
        self._cache: dict[str, str] | None = None

    def describe(self) -> dict[str, Any]:
        """What the manifest records: the endpoint's public form, the model, counts (never the key)."""
        return {"advice": "llm", "base_url": self.client.public_url, "model": self.model, "redact": self.redact,
                **self.stats}  # fmt: skip

    def _request(self, family: dict[str, Any], nearest: tuple[str, str]) -> ChatRequest:
        examples = "\n".join(f"- {e}" for e in family.get("example_texts", [])[:5])
        user = (
            f"Family: {family.get('name', '')}\nDefinition: {family.get('definition') or ''}\n"
            f"Keywords: {', '.join(family.get('keywords') or [])}\nExamples:\n{examples}\n"
            f"Closest known mode: {nearest[1]}\nIts advice: {nearest[0]}"
        )
        if self.redact:
            user = redact_text(user)
        messages = [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]
        return ChatRequest(messages, params={"temperature": 0})

    def advise(self, family: dict[str, Any], nearest: tuple[str, str]) -> tuple[str, str]:
        """(advice, where it comes from) for one family; the nearest-mode advice with the reason when it fails."""
        request = self._request(family, nearest)
        material = json.dumps({"model": self.model, "messages": request.messages, "params": request.params},
                              sort_keys=True)  # fmt: skip
        key = f"{CACHE_VERSION}:{hashlib.sha256(material.encode('utf-8')).hexdigest()}"
        cache = self._load_cache()
        if key in cache:
            self.stats["cache_hits"] += 1
            return cache[key], f"written for this family by {self.model} (cached)"

        try:
            advice = self.complete(request, _read_advice)
        except (BackendError, ParseError) as exc:
            self.stats["failed"] += 1
            return nearest[0], f"{nearest[1]}; the LLM ({self.model}) gave no advice: {str(exc)[:160]}"
        cache[key] = advice
        self._save_cache(cache)
        return advice, f"written for this family by {self.model}"

    def _load_cache(self) -> dict[str, str]:
        if self._cache is None:
            self._cache = {}
            if self.cache_path is not None and self.cache_path.is_file():
                try:
                    loaded = json.loads(self.cache_path.read_text(encoding="utf-8"))
                except (OSError, json.JSONDecodeError):
                    loaded = {}  # an unreadable cache only costs the calls again; it is rewritten below
                self._cache = (
                    {k: v for k, v in loaded.items() if isinstance(v, str)}
                    if isinstance(loaded, dict)
                    else {}
                )
        return self._cache

    def _save_cache(self, cache: dict[str, str]) -> None:
        if self.cache_path is None:
            return
        from trajfm.runfolder import atomic_write_text

        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.cache_path, json.dumps(cache, indent=1, sort_keys=True))


def _read_advice(content: str) -> str:
    """The advice of a reply (its JSON object read as judge replies are); a `ParseError` (retried) when it has
    none."""
    obj, _ = extract_json_object(content or "")
    advice = str(obj.get("advice") or "").strip()
    if not advice:
        raise ParseError(f"the advice reply has no advice: {content[:200]!r}", raw=content)
    return advice
