"""The Workers page against a real ``jobline run`` in Chromium (issue 19): + / - on the group
``jobline run`` supervises, quiet and resume, the logs, the autoscaling form, a restart; axe finds
no serious or critical violation."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Page, expect

from jobline.testing import wait_until

from .conftest import Stack, axe_violations, fmt, sign_in

WORKERS = "{ workers { id group state quiet } workerGroups { name desired actual autoscale } }"


async def fleet(stack: Stack) -> dict[str, Any]:
    return await stack.gql(WORKERS)


async def test_scale_quiet_logs_autoscale_and_restart_from_the_workers_page(
        page: Page, stack: Stack) -> None:
    async def one_worker() -> list[str] | None:
        ws = [w["id"] for w in (await fleet(stack))["workers"] if w["group"] == "default"]
        return ws if len(ws) == 1 else None

    [first] = await wait_until(one_worker, timeout=90, message="one default worker") or []
    await sign_in(page, stack.admin_key, "/workers")
    card = page.get_by_role("region", name="Group default")
    await expect(card.get_by_label("default workers")).to_have_text("1 / 1")
    bad = await axe_violations(page)
    assert not bad, f"axe on workers:\n{fmt(bad)}"

    # + : the supervisor of `jobline run` starts a second worker within seconds
    await card.get_by_role("button", name="Add a worker to default").click()
    await expect(card.get_by_label("default workers")).to_have_text("2 / 2", timeout=60_000)
    await card.get_by_role("button", name="Remove a worker from default").click()
    await expect(card.get_by_label("default workers")).to_have_text("1 / 1", timeout=90_000)

    row = page.get_by_role("row", name=re.compile(re.escape(first)))
    await row.get_by_role("button", name=f"Quiet {first}").click()
    await expect(row.get_by_text("draining", exact=True)).to_be_visible(timeout=60_000)
    await row.get_by_role("button", name=f"Resume {first}").click()
    await expect(row.get_by_role("button", name=f"Quiet {first}")).to_be_visible(timeout=60_000)

    await row.get_by_role("button", name=f"Logs of {first}").click()
    logs = page.get_by_role("dialog", name=f"Logs of {first}")
    await expect(logs.get_by_label(f"Log lines of {first}")).to_contain_text("started")
    await page.keyboard.press("Escape")

    await card.get_by_role("button", name="Autoscaling…").click()
    form = page.get_by_role("dialog", name="Autoscaling of default")
    await form.get_by_role("switch", name="Autoscaling on").check()
    await form.get_by_label("Maximum workers").fill("3")
    await form.get_by_role("button", name="Save autoscaling").click()
    await expect(card.get_by_text("autoscaling 1\u20133")).to_be_visible()  # en dash, as shown
    groups = {g["name"]: g for g in (await fleet(stack))["workerGroups"]}
    assert groups["default"]["autoscale"]["max"] == 3
    # off again: the other tests share this stack
    await card.get_by_role("button", name="Autoscaling…").click()
    await form.get_by_role("switch", name="Autoscaling on").uncheck()
    await form.get_by_role("button", name="Save autoscaling").click()
    await expect(card.get_by_text("manual")).to_be_visible()

    await row.get_by_role("button", name=f"Restart {first}").click()

    async def replaced() -> bool:
        ids = [w["id"] for w in (await fleet(stack))["workers"] if w["group"] == "default"]
        return len(ids) == 1 and ids[0] != first

    await wait_until(replaced, timeout=90, message="the restarted worker replaced")
    async with stack.client() as c:
        audit = (await c.get("/api/v1/audit", params={"type": "workers.command"})).json()
    assert {e["data"]["action"] for e in audit["events"]} >= {"quiet", "resume", "restart"}
