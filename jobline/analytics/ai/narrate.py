"""Optional LLM narration of the computed explanations (issue 17; docs/ai.md "Narration").

With ``JOBLINE_LLM_URL`` set (plus ``JOBLINE_LLM_MODEL``, ``JOBLINE_LLM_API_KEY``,
``JOBLINE_LLM_TIMEOUT_MS``), an explanation that the heuristics already computed as a template is
rephrased by an OpenAI-compatible ``POST {url}/chat/completions``. Without the URL nothing is
called and every text is the template.

Invariants:

* Only **computed facts** are sent: job types, queue names, error types, masked error templates
  (:mod:`jobline.analytics.ai.templates`), counts, durations, rates and the template text built
  from them. No caller passes a job payload, a raw error message or a result; :func:`facts_only`
  drops any key outside the allowed set, so a new caller cannot leak one by accident.
* Any failure (no URL, connection error, timeout, non-200, a body that is not a chat completion,
  empty or oversized text) returns the template with ``narrated = False``: narration can make a
  text nicer, never make an answer fail or slower than the timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx
import orjson

from jobline.shared.platform.config import Settings

#: A narrated text longer than this is treated as garbage (the template is at most a few lines).
MAX_CHARS = 1200
#: At most this many texts are narrated per answer (concurrently); the rest keep the template.
MAX_ITEMS = 10

#: Keys a fact may have; anything else is dropped before sending (see the module docstring).
ALLOWED = frozenset({
    "kind", "title", "template", "text", "queue", "queues", "jobType", "jobTypes", "errorType",
    "errorTypes", "count", "retryable", "evidence", "metric", "currentValue", "baseline",
    "score", "causes", "impactJobs", "impactSlaMinutes", "reasoning", "inputs",
    "suggestedWorkers", "currentWorkers", "expectedWaitMs",
})

SYSTEM = ("You are an SRE assistant for Jobline, a background-job system. Rewrite the given "
          "explanation for an operator in at most three short sentences. Use only the facts "
          "given; do not invent numbers, causes or names. Keep every number as given. Answer "
          "with the text only.")


def enabled(settings: Settings) -> bool:
    return bool(settings.llm_url)


def facts_only(facts: dict[str, Any]) -> dict[str, Any]:
    """``facts`` restricted to :data:`ALLOWED` keys (an allow-list, not a deny-list)."""
    return {k: v for k, v in facts.items() if k in ALLOWED}


def _content(body: bytes) -> str | None:
    try:
        data = orjson.loads(body)
        text = data["choices"][0]["message"]["content"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return None
    if not isinstance(text, str):
        return None
    text = text.strip()
    return text if 0 < len(text) <= MAX_CHARS else None


async def _call(client: httpx.AsyncClient, settings: Settings, task: str,
                facts: dict[str, Any]) -> str | None:
    assert settings.llm_url is not None
    headers = {"Content-Type": "application/json"}
    if settings.llm_api_key:
        headers["Authorization"] = f"Bearer {settings.llm_api_key}"
    body = {
        "model": settings.llm_model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"{task}\nFacts (JSON):\n"
                                        + orjson.dumps(facts_only(facts)).decode()},
        ],
    }
    r = await client.post(f"{settings.llm_url}/chat/completions", content=orjson.dumps(body),
                          headers=headers)
    return _content(r.content) if r.status_code == 200 else None


async def phrase_many(settings: Settings, task: str,
                      items: Sequence[tuple[dict[str, Any], str]]) -> list[tuple[str, bool]]:
    """``(text, narrated)`` per ``(facts, template)``: the model's phrasing of the facts, or the
    template when narration is off or fails. The first :data:`MAX_ITEMS` are narrated
    concurrently, all within one ``llm_timeout_ms``."""
    out = [(template, False) for _, template in items]
    if not enabled(settings) or not items:
        return out
    timeout = max(settings.llm_timeout_ms, 1) / 1000
    todo = list(items)[:MAX_ITEMS]
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            results = await asyncio.wait_for(asyncio.gather(
                *(_call(client, settings, task, f) for f, _ in todo),
                return_exceptions=True), timeout + 0.5)
    except (TimeoutError, httpx.HTTPError, OSError):
        return out
    for i, res in enumerate(results):
        if isinstance(res, str):
            out[i] = (res, True)
    return out


async def phrase(settings: Settings, task: str, facts: dict[str, Any],
                 template: str) -> tuple[str, bool]:
    """One text: see :func:`phrase_many`."""
    return (await phrase_many(settings, task, [(facts, template)]))[0]
