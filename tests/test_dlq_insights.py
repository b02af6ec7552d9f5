"""DLQ root causes (issue 17, item 5): error messages grouped into templates, evidence from the
history for whether a retry helps, and "retry this group" acting on exactly its jobs."""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from jobline.analytics.ai.templates import group, mask
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec, Outcome, Status
from jobline.shared.platform.clock import FakeClock
from jobline.shared.platform.connections import Deps

# --- grouping accuracy on labelled error families -------------------------------------------------

Gen = Callable[[random.Random], tuple[str, str]]


def _uuid(r: random.Random) -> str:
    return str(uuid.UUID(int=r.getrandbits(128)))


#: Twelve error families, each producing messages whose variable parts differ the way real ones
#: do (ids, sizes, hosts, paths, quoted user input, durations).
FAMILIES: dict[str, Gen] = {
    "timeout": lambda r: ("TimeoutError", f"timed out after {r.randint(5, 60) * 1000} ms "
                          f"waiting for https://api.partner{r.randint(1, 9)}.example/v1/"
                          f"{r.choice(['orders', 'users', 'refunds'])}"),
    "refused": lambda r: ("ConnectionError", f"connection refused to 10.0.{r.randint(0, 255)}."
                          f"{r.randint(1, 254)}:{r.choice([5432, 6379, 443])}"),
    "email": lambda r: ("ValidationError", f"invalid email address '{r.choice(['bob', 'al@', 'x@y'])}"
                        f"{r.randint(1, 999)}' for user {r.randint(1, 10**6)}"),
    "missing": lambda r: ("KeyError", f"missing required field '{r.choice(['userId', 'sku', 'to'])}'"
                          f" in payload of job {_uuid(r)}"),
    "ratelimit": lambda r: ("RateLimited", f"429 Too Many Requests: retry after {r.randint(1, 90)}s"
                            f" (account {r.randint(1000, 9999)})"),
    "disk": lambda r: ("OSError", f"No space left on device while writing /var/lib/render/"
                       f"{r.getrandbits(48):012x}/frame-{r.randint(1, 9999)}.png"),
    "s3": lambda r: ("S3Error", f"AccessDenied: bucket media-{r.randint(1, 40)} key "
                     f"uploads/{r.randint(1, 10**6)}/{_uuid(r)}.jpg"),
    "oom": lambda r: ("MemoryError", f"worker exceeded memory limit: {r.randint(1025, 8192)} MiB "
                      f"used of 1024 MiB"),
    "codec": lambda r: ("FFmpegError", f"unsupported codec {r.choice(['hevc', 'vp9', 'av1'])} in "
                        f"stream {r.randint(0, 3)} of input {r.getrandbits(64):016x}"),
    "http500": lambda r: ("HTTPError", f"upstream returned 500 Internal Server Error for request "
                          f"{_uuid(r)} after {r.randint(100, 9000)} ms"),
    "deadlock": lambda r: ("DBError", f"deadlock detected: process {r.randint(100, 99999)} waits "
                           f"for ShareLock on transaction {r.randint(10**6, 10**7)}"),
    "schema": lambda r: ("ValidationError", f"payload.videoSizeMb must be at most 4096, got "
                         f"{r.randint(4097, 20000)}"),
}


def pairwise_f1(labels: list[str], groups: list[int]) -> float:
    """F1 of "same group" decisions over all pairs (the usual clustering accuracy measure)."""
    def pairs(keys: list[Any]) -> int:
        return sum(n * (n - 1) // 2 for n in Counter(keys).values())
    tp = pairs(list(zip(labels, groups, strict=True)))
    precision = tp / max(pairs(groups), 1)
    recall = tp / max(pairs(labels), 1)
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def test_labelled_error_families_are_grouped_with_high_accuracy() -> None:
    r = random.Random(17)
    items = []
    for label, gen in FAMILIES.items():
        for _ in range(r.randint(20, 120)):
            items.append((label, *gen(r)))
    r.shuffle(items)
    clusters = group(items, key=lambda it: (it[1], it[2]))
    of: dict[int, int] = {}
    for gi, c in enumerate(clusters):
        for it in c.members:
            of[id(it)] = gi
    labels = [it[0] for it in items]
    assigned = [of[id(it)] for it in items]
    # purity: each group is one family; completeness: each family is one group
    purity = sum(Counter(it[0] for it in c.members).most_common(1)[0][1]
                 for c in clusters) / len(items)
    by_label: dict[str, Counter[int]] = defaultdict(Counter)
    for lab, g in zip(labels, assigned, strict=True):
        by_label[lab][g] += 1
    completeness = sum(c.most_common(1)[0][1] for c in by_label.values()) / len(items)
    f1 = pairwise_f1(labels, assigned)
    print(f"grouping: {len(clusters)} groups for {len(FAMILIES)} families, purity {purity:.3f}, "
          f"completeness {completeness:.3f}, pairwise F1 {f1:.3f}")
    assert purity >= 0.9 and completeness >= 0.9 and f1 >= 0.9


def test_masking_keeps_the_words_and_hides_the_values() -> None:
    assert mask("timed out after 30000 ms talking to https://x.example/a?b=1") == [
        "timed", "out", "after", "<NUM>", "ms", "talking", "to", "<URL>"]
    assert mask(f"job {uuid.uuid4()} failed for 'bob@example.com' at 10.1.2.3:80") == [
        "job", "<UUID>", "failed", "for", "<STR>", "at", "<IP>"]
    assert mask("") == []


# --- through the real store and the API -----------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def _dead(deps: Deps, messages: list[tuple[str, str]], queue: str = "media",
                job_type: str = "encode", attempts: int = 1,
                clock: FakeClock | None = None) -> list[uuid.UUID]:
    """Jobs dead-lettered through the real path, one per (error type, message)."""
    subs = await jobs.submit_many(deps, [JobSpec(queue=queue, job_type=job_type,
                                                 payload={"i": i}, max_attempts=attempts)
                                         for i in range(len(messages))])
    ids = [s.submitted.id for s in subs]
    for n in range(attempts):
        if n and clock is not None:
            clock.advance(3_600_000)  # past any back-off
        claimed = sorted(await jobs.claim(deps, "w", [queue], len(ids)), key=lambda c: c.id)
        assert len(claimed) == len(ids)
        by_id = dict(zip(sorted(ids), [m for _, m in sorted(zip(ids, messages,
                                                                  strict=True))], strict=True))
        await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error=by_id[c.id][1],
                                       error_type=by_id[c.id][0], final=n == attempts - 1)
                               for c in claimed])
    return ids


async def _recovering(deps: Deps, clock: FakeClock, error_type: str, n: int) -> None:
    """``n`` jobs that failed once with ``error_type`` and then completed (the history that makes
    an error type measurably retryable)."""
    await jobs.submit_many(deps, [JobSpec(queue="hist", job_type="h", payload={}, max_attempts=3)
                                  for _ in range(n)])
    claimed = await jobs.claim(deps, "w", ["hist"], n)
    await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error="blip",
                                   error_type=error_type) for c in claimed])
    clock.advance(60_000)
    claimed = await jobs.claim(deps, "w", ["hist"], n)
    assert len(claimed) == n
    await jobs.complete(deps, [Outcome(c.id, c.token, ok=True) for c in claimed])


async def test_insights_group_dead_letters_and_retry_acts_on_exactly_one_group(
        deps: Deps, admin: httpx.AsyncClient, clock: FakeClock) -> None:
    r = random.Random(3)
    await _recovering(deps, clock, "TimeoutError", 12)
    timeouts = await _dead(deps, [FAMILIES["timeout"](r) for _ in range(7)])
    invalid = await _dead(deps, [FAMILIES["email"](r) for _ in range(5)], job_type="notify")
    disk = await _dead(deps, [FAMILIES["disk"](r) for _ in range(3)], queue="render",
                       job_type="frame")

    got = (await admin.get("/api/v1/ai/dlq-insights")).json()
    assert got["analyzed"] == 15 and got["complete"] is True
    groups = {g["errorTypes"][0]: g for g in got["groups"]}
    assert [g["count"] for g in got["groups"]] == [7, 5, 3]  # largest first
    t = groups["TimeoutError"]
    assert t["template"] == "timed out after <NUM> ms waiting for <URL>"
    assert t["jobTypes"] == ["encode"] and t["queues"] == ["media"]
    assert set(t["sampleJobIds"]) <= {str(i) for i in timeouts} and len(t["sampleJobIds"]) == 5
    # measured: 12 of the 19 jobs that hit TimeoutError recovered (the 7 here did not)
    assert t["retryable"] is True and "12 of 19 jobs" in t["evidence"]
    # no history for ValidationError: the wording decides, and says so
    v = groups["ValidationError"]
    assert v["retryable"] is False and "wording" in v["evidence"]
    assert "PUT /api/v1/retry-policies/notify" in v["suggestion"]
    assert groups["OSError"]["queues"] == ["render"]

    only = (await admin.get("/api/v1/ai/dlq-insights", params={"queue": "render"})).json()
    assert [g["count"] for g in only["groups"]] == [3]

    done = await admin.post("/api/v1/ai/dlq-insights/retry", json={"groupId": t["groupId"]})
    assert done.status_code == 200, done.text
    assert sorted(done.json()["jobIds"]) == sorted(str(i) for i in timeouts)
    statuses = dict(await deps.pool.fetch("SELECT id, status FROM jobs WHERE id = ANY($1)",
                                          timeouts + invalid + disk))
    assert {statuses[i] for i in timeouts} == {Status.PENDING.value}
    assert {statuses[i] for i in invalid + disk} == {Status.DEAD_LETTER.value}

    # the group is gone from the DLQ now: retrying it again is a 404, not a retry of others
    again = await admin.post("/api/v1/ai/dlq-insights/retry", json={"groupId": t["groupId"]})
    assert again.status_code == 404


async def test_a_measured_non_recovering_error_is_not_retryable(
        deps: Deps, admin: httpx.AsyncClient, clock: FakeClock) -> None:
    # ConnectionError reads as transient, but the history says it never recovers here
    r = random.Random(5)
    await _dead(deps, [FAMILIES["refused"](r) for _ in range(11)], queue="sync", job_type="pull",
                attempts=2, clock=clock)
    (g,) = (await admin.get("/api/v1/ai/dlq-insights")).json()["groups"]
    assert g["retryable"] is False and "0 of 11 jobs" in g["evidence"]
    assert "median 2 attempts" not in g["suggestion"]  # the not-retryable advice, not "retry"
    assert "retrying will fail again" in g["suggestion"]


async def test_bad_input_is_refused_naming_the_field(deps: Deps,
                                                     admin: httpx.AsyncClient) -> None:
    from jobline.shared.security.auth import create_key

    r = await admin.get("/api/v1/ai/dlq-insights", params={"limit": 0})
    assert r.status_code in (400, 422) and "limit" in r.text
    r = await admin.get("/api/v1/ai/dlq-insights", params={"queeu": "x"})
    assert r.status_code == 400 and "queeu" in r.text
    r = await admin.post("/api/v1/ai/dlq-insights/retry", json={"groupId": "nothex"})
    assert r.status_code in (400, 422) and "groupId" in r.text
    r = await admin.post("/api/v1/ai/dlq-insights/retry", json={"groupId": "0" * 16})
    assert r.status_code == 404
    _, key = await create_key(deps, "developer", "dev")
    r = await admin.get("/api/v1/ai/dlq-insights", headers={"X-Api-Key": key})
    assert r.status_code == 403


async def test_graphql_gives_the_same_groups_and_retries_a_group(
        deps: Deps, admin: httpx.AsyncClient) -> None:
    r = random.Random(9)
    await _dead(deps, [FAMILIES["oom"](r) for _ in range(4)], queue="ml", job_type="infer")
    codec = await _dead(deps, [FAMILIES["codec"](r) for _ in range(2)])
    rest = (await admin.get("/api/v1/ai/dlq-insights")).json()
    q = """{ dlqInsights { analyzed complete groups { groupId template count jobTypes queues
             errorTypes retryable evidence suggestion sampleJobIds firstSeen } } }"""
    g = (await admin.post("/graphql", json={"query": q})).json()["data"]["dlqInsights"]
    assert g["analyzed"] == rest["analyzed"] == 6
    assert [(x["groupId"], x["template"], x["count"], x["retryable"], x["suggestion"])
            for x in g["groups"]] == [
        (x["groupId"], x["template"], x["count"], x["retryable"], x["suggestion"])
        for x in rest["groups"]]
    codec_group = next(x for x in g["groups"] if x["errorTypes"] == ["FFmpegError"])
    m = """mutation($g: String!) { retryDlqGroup(groupId: $g) { count jobIds } }"""
    done = (await admin.post("/graphql", json={"query": m, "variables": {
        "g": codec_group["groupId"]}})).json()["data"]["retryDlqGroup"]
    assert sorted(done["jobIds"]) == sorted(str(i) for i in codec)
    bad = (await admin.post("/graphql", json={"query": m, "variables": {"g": "zz"}})).json()
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert bad["errors"][0]["extensions"]["field"] == "groupId"
