"""The Alerts page in real headless Chromium against a real ``jobline run`` stack: create a
webhook channel and send it a test, create a rule in the editor, see it fire (history with its
delivery status, the header's firing indicator), acknowledge it; axe-core on every tab."""

from __future__ import annotations

import re
import uuid

from alert_receivers import http_receiver
from playwright.async_api import Page, expect

from jobline.testing import wait_until

from .conftest import Stack, axe_violations, fmt, sign_in

# A rule fires within one evaluation interval (10 s by default) and the header polls every 15 s.
SLOW = 60_000


async def assert_accessible(page: Page, where: str) -> None:
    bad = await axe_violations(page)
    assert not bad, f"axe on {where}:\n{fmt(bad)}"


async def pick(page: Page, label: str, option: str) -> None:
    await page.get_by_role("dialog").get_by_label(label, exact=True).click()
    await page.get_by_role("option", name=option, exact=True).click()


async def test_alerts_page_channel_test_rule_fires_and_is_acknowledged(
        page: Page, stack: Stack) -> None:
    q = f"e2e-alert-{uuid.uuid4().hex[:6]}"
    channel = f"pager {q}"
    rule = f"backlog on {q}"
    # paused: the demo workers leave its job pending, so the backlog holds
    await stack.gql("mutation($q: String!) { pauseQueue(queue: $q) { paused } }", {"q": q})
    async with http_receiver() as receiver:
        await sign_in(page, stack.admin_key, "/alerts")
        await expect(page.get_by_role("heading", name="Alerts")).to_be_visible()
        await expect(page.get_by_role("table", name="Alert rules")).to_contain_text(
            "Jobs dead-lettered")
        await assert_accessible(page, "alerts: rules")

        # a webhook channel, and its "Send test" delivered to the receiver
        await page.get_by_role("tab", name="Channels").click()
        await page.get_by_role("button", name="New channel").click()
        form = page.get_by_role("dialog", name="New channel")
        await form.get_by_role("textbox", name="Name", exact=True).fill(channel)
        await pick(page, "Kind", "Webhook")
        await form.get_by_role("textbox", name="URLs", exact=True).fill(receiver.url("/hook"))
        await form.get_by_label("Signing secret").fill("e2e-signing-secret")
        await assert_accessible(page, "alerts: channel editor")
        await form.get_by_role("button", name="Create channel").click()
        await expect(form).to_have_count(0)
        row = page.locator(f'tr[data-channel="{channel}"]')
        await expect(row).to_contain_text("http://127.0.0.1")
        await expect(row).not_to_contain_text("/hook")  # the URL's path is masked
        await row.get_by_role("button", name=f"Send test to {channel}").click()
        await expect(row.get_by_text("test sent")).to_be_visible(timeout=SLOW)
        assert [p.json()["event"] for p in receiver.at("/hook")] == ["test"]
        await assert_accessible(page, "alerts: channels")

        # a rule made in the editor
        await page.get_by_role("tab", name="Rules").click()
        await page.get_by_role("button", name="New rule").click()
        form = page.get_by_role("dialog", name="New alert rule")
        await form.get_by_role("textbox", name="Name", exact=True).fill(rule)
        await pick(page, "Metric", "Backlog (pending jobs)")
        await form.get_by_role("textbox", name="Threshold", exact=True).fill("0")
        await form.get_by_label("For (s)").fill("0")
        await form.get_by_role("textbox", name="Queue", exact=True).fill(q)
        await pick(page, "Severity", "critical")
        await form.get_by_label("Channels").click()
        await page.get_by_role("option", name=channel).click()
        await assert_accessible(page, "alerts: rule editor")
        await form.get_by_role("button", name="Create rule").click()
        await expect(form).to_have_count(0)
        rule_row = page.locator(f'tr[data-rule="{rule}"]')
        await expect(rule_row).to_contain_text("backlog > 0")
        await expect(rule_row).to_contain_text(channel)

        await stack.gql("mutation($in: SubmitJobInput!) { submit(input: $in) { id } }",
                        {"in": {"queue": q, "jobType": "demo.noop", "payload": {}}})

        async def fired() -> bool:
            return any(p.json()["event"] == "firing" for p in receiver.at("/hook"))

        await wait_until(fired, timeout=SLOW / 1000, message="firing webhook delivered")
        post = next(p for p in receiver.at("/hook") if p.json()["event"] == "firing")
        assert post.json()["rule"]["name"] == rule
        assert re.fullmatch(r"v1=[0-9a-f]{64}", post.headers["x-jobline-signature"])

        # the history shows it firing with the delivery sent; the header counts it
        await rule_row.get_by_role("link", name=rule).click()
        await expect(page).to_have_url(re.compile(r"/alerts\?tab=history&rule="))
        hist = page.locator(f'tr[data-alert="{rule}"]')
        await expect(hist).to_contain_text("firing", timeout=SLOW)
        await expect(hist).to_contain_text(f"{channel} firing: sent", timeout=SLOW)
        await page.reload()
        indicator = page.get_by_role("link", name=re.compile(r"alerts? firing"))
        await expect(indicator).to_be_visible(timeout=SLOW)
        await expect(indicator).to_have_accessible_name(re.compile(re.escape(rule)))
        await assert_accessible(page, "alerts: history")
        await page.get_by_role("button", name="Switch to dark mode").click()
        await expect(page.locator("html")).to_have_attribute("data-mantine-color-scheme", "dark")
        await assert_accessible(page, "alerts: history (dark)")
        await page.get_by_role("tab", name="Rules").click()
        await expect(page.locator(f'tr[data-rule="{rule}"]')).to_contain_text("firing")
        await assert_accessible(page, "alerts: rules (dark)")
        await page.get_by_role("tab", name="History").click()
        await hist.get_by_role("button", name=f"Acknowledge {rule}").click()
        await expect(hist.get_by_role("button", name=f"Acknowledge {rule}")).to_have_count(0)
        data = await stack.gql("query($q: String) { alerts(queue: $q) { alerts { "
                               "status acknowledgedAt } } }", {"q": q})
        (a,) = data["alerts"]["alerts"]
        assert a["status"] == "firing" and a["acknowledgedAt"]

        # leave the shared stack as found: no firing alert in every later test's header
        async with stack.client() as c:
            rules = (await c.get("/api/v1/alert-rules")).json()["rules"]
            (mine,) = [r for r in rules if r["name"] == rule]
            assert (await c.delete(f"/api/v1/alert-rules/{mine['id']}")).status_code == 204
            assert (await c.get("/api/v1/alerts", params={"status": "firing", "queue": q})
                    ).json()["alerts"] == []

        # the developer sees the page without its write controls
        await page.get_by_role("button", name="Sign out").click()
        await sign_in(page, stack.dev_key, "/alerts")
        await expect(page.locator('tr[data-rule="Jobs dead-lettered"]')).to_be_visible()
        await expect(page.get_by_role("button", name="New rule")).to_have_count(0)
