import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { AlertsPage, channelConfig, ruleInput } from "./AlertsPage";
import { FiringAlerts } from "./FiringAlerts";
import { Layout } from "../shell/Layout";
import { fakeClient, renderWith } from "../test/render";

const rule = {
  id: "r1", name: "Mail failures", builtin: null, description: "failure_rate > 0.1 over 5 min", severity: "critical", enabled: true,
  state: "firing", stateSince: "2026-01-01T00:00:00.000Z", lastValue: 0.25, lastEvaluatedAt: null, forS: 300, renotifyS: 0,
  channelIds: ["c1"], alertId: "a1", condition: { metric: "failure_rate", op: ">", threshold: 0.1, windowS: 300, targetMs: null, minSamples: 1 },
  scope: { queue: "mail", jobType: null },
};
const channel = { id: "c1", name: "ops mail", kind: "email", enabled: true, config: { to: ["a@example.com"], password: "***" } };
const alert = {
  id: "a1", ruleId: "r1", ruleName: "Mail failures", severity: "critical", status: "firing", value: 0.25, peakValue: 0.3,
  summary: "[FIRING] ...", startedAt: "2026-01-01T00:00:00.000Z", firedAt: "2026-01-01T00:05:00.000Z", resolvedAt: null,
  silenced: false, acknowledgedAt: null, acknowledgedBy: null, scope: { queue: "mail", jobType: null },
  deliveries: [
    { id: "d1", channelName: "ops mail", kind: "email", recipient: 0, event: "firing", status: "sent", attempts: 1, error: null },
    { id: "d2", channelName: "pager", kind: "webhook", recipient: 0, event: "firing", status: "retrying", attempts: 3, error: "HTTP 503" },
  ],
};

describe("AlertsPage", () => {
  it("lists rules with their state and offers admins the editor", () => {
    renderWith(<AlertsPage />, { role: "admin", data: { alertRules: [rule], alertChannels: [channel] }, path: "/alerts" });
    const table = screen.getByRole("table", { name: "Alert rules" });
    const row = within(table).getByRole("row", { name: /Mail failures/ });
    expect(within(row).getByText("firing")).toBeInTheDocument();
    expect(within(row).getByText("ops mail")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "New rule" })).toBeInTheDocument();
    expect(within(row).getByRole("button", { name: "Edit Mail failures" })).toBeInTheDocument();
  });
  it("shows developers the rules without write controls", () => {
    renderWith(<AlertsPage />, { role: "developer", data: { alertRules: [rule], alertChannels: [channel] }, path: "/alerts" });
    expect(screen.getByRole("table", { name: "Alert rules" })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "New rule" })).toBeNull();
    expect(screen.queryByRole("button", { name: /Edit/ })).toBeNull();
  });
  it("sends a test message to a channel", async () => {
    const calls = { mutations: [] as unknown[] };
    renderWith(<AlertsPage />, { role: "admin", client: fakeClient({ alertChannels: [channel] }, calls), path: "/alerts?tab=channels" });
    const row = screen.getByRole("row", { name: /ops mail/ });
    expect(row).toHaveTextContent("a@example.com");
    await userEvent.click(within(row).getByRole("button", { name: "Send test to ops mail" }));
    expect(calls.mutations).toEqual([{ id: "c1" }]);
  });
  it("shows the history with each delivery's status, filtered by the rule in the URL", () => {
    renderWith(<AlertsPage />, { role: "developer", data: { alerts: { firing: 1, nextCursor: null, alerts: [alert] } }, path: "/alerts?rule=r1" });
    const table = screen.getByRole("table", { name: "Alert history" });
    const row = within(table).getByRole("row", { name: /Mail failures/ });
    expect(within(row).getByText(/ops mail firing: sent/)).toBeInTheDocument();
    expect(within(row).getByText(/pager firing: retrying ×3/)).toBeInTheDocument();
    expect(within(row).getByRole("button", { name: "Acknowledge Mail failures" })).toBeInTheDocument();
    expect(within(row).getByRole("link", { name: "queue mail" })).toHaveAttribute("href", "/jobs?queue=mail");
  });
});

describe("alert forms", () => {
  it("build the REST/GraphQL bodies", () => {
    expect(ruleInput({
      name: "slow", metric: "sla_compliance", op: "<", threshold: 0.99, windowS: 600, targetMs: 2000, queue: " mail ", jobType: "",
      forS: 60, severity: "warning", renotifyS: 0, channelIds: ["c1"], enabled: true,
    })).toEqual({
      name: "slow", condition: { metric: "sla_compliance", op: "<", threshold: 0.99, windowS: 600, targetMs: 2000 }, severity: "warning",
      forS: 60, renotifyS: 0, enabled: true, scope: { queue: "mail", jobType: null }, channelIds: ["c1"],
    });
    expect(channelConfig("email", { host: "smtp", port: "25", security: "none", fromAddress: "j@x.io", to: "a@x.io\nb@x.io", password: "***" }))
      .toEqual({ host: "smtp", port: 25, security: "none", fromAddress: "j@x.io", to: ["a@x.io", "b@x.io"], password: "***" });
    expect(channelConfig("slack", { urls: "https://hooks.slack.com/***" })).toEqual({ webhookUrls: ["https://hooks.slack.com/***"] });
  });
});

describe("header", () => {
  it("shows how many alerts are firing, linking to them", () => {
    renderWith(<FiringAlerts />, { data: { alerts: { firing: 2, alerts: [{ id: "a1", ruleName: "A", severity: "critical" }, { id: "a2", ruleName: "B", severity: "info" }] } } });
    const badge = screen.getByRole("link", { name: "2 alerts firing: A, B" });
    expect(badge).toHaveAttribute("href", "/alerts?tab=history&status=firing");
  });
  it("has an Alerts link in the navigation for every role", () => {
    renderWith(<Layout />, { role: "developer" });
    const nav = screen.getByRole("navigation", { name: "Main" });
    expect(within(nav).getByRole("link", { name: "Alerts" })).toHaveAttribute("href", "/alerts");
  });
});
