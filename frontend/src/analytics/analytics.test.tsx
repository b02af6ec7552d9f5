import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { CombinedError, type Client } from "urql";
import { fromValue, merge, never } from "wonka";
import { renderWith } from "../test/render";
import { Layout } from "../shell/Layout";
import { AppRoutes } from "../App";
import SummaryPage from "./SummaryPage";
import QueuesPage, { clearLabel, compared } from "./QueuesPage";
import FailuresPage from "./FailuresPage";
import RetriesPage from "./RetriesPage";
import ResourcesPage from "./ResourcesPage";
import CostPage, { costErrors } from "./CostPage";
import SlaPage, { slaErrors, slaText, slaVariables } from "./SlaPage";
import DependenciesPage from "./DependenciesPage";
import { intervalOf, viewOf } from "./range";
import { direction } from "./ui";

// The canvas (ECharts) and the graph (@xyflow/react) are their libraries' business; here a chart
// is its accessible label, and the graph lists its nodes.
vi.mock("../charts/EChart", () => ({
  EChart: ({ label }: { label: string }) => <div role="img" aria-label={label} />,
}));
vi.mock("./DagGraph", () => ({
  default: ({ cp, onPick }: { cp: { nodes: { jobId: string; onCriticalPath: boolean }[] }; onPick: (id: string) => void }) => (
    <ul aria-label="graph nodes">
      {cp.nodes.map((n) => <li key={n.jobId}><button onClick={() => onPick(n.jobId)}>{n.jobId}{n.onCriticalPath ? " (critical)" : ""}</button></li>)}
    </ul>
  ),
}));

interface Calls { queries: Record<string, unknown>[]; mutations: Record<string, unknown>[] }

/** A urql client answering every query with `data` (or a GraphQL error), recording variables. Its
 * results stay open like a real client's (urql clears an error when a query's source ends). */
function client(data: Record<string, unknown>, opts: { error?: string; calls?: Calls } = {}): Client {
  const calls = opts.calls ?? { queries: [], mutations: [] };
  const result = (d: unknown) => merge([fromValue(opts.error
    ? { error: new CombinedError({ graphQLErrors: [opts.error] }), stale: false, hasNext: false }
    : { data: d, stale: false, hasNext: false }), never]);
  return {
    executeQuery: (op: { variables: Record<string, unknown> }) => { calls.queries.push(op.variables); return result(data); },
    executeSubscription: () => never,
    executeMutation: (op: { variables: Record<string, unknown> }) => {
      calls.mutations.push(op.variables);
      return fromValue({ data: {}, stale: false, hasNext: false });
    },
  } as unknown as Client;
}

const trend = (value: number | null, previous: number | null) => ({
  value, previous, change: value === null || previous === null || previous === 0 ? null : (value - previous) / previous,
});
const at = (h: number) => new Date(Date.UTC(2026, 11, 5, h)).toISOString();

describe("analytics view in the URL", () => {
  it("reads presets, custom ranges and filters, and rejects a reversed custom range", () => {
    const now = Date.UTC(2026, 11, 6, 10, 15, 30);
    const v = viewOf(new URLSearchParams("range=7d&queue=email&jobType=send"), now);
    expect(v.to).toBe("2026-12-06T10:16:00.000Z"); // rounded up to the minute: a stable question
    expect(v.from).toBe("2026-11-29T10:16:00.000Z");
    expect([v.queue, v.jobType, v.invalid]).toEqual(["email", "send", null]);
    expect(viewOf(new URLSearchParams(""), now).range).toBe("24h");
    const c = viewOf(new URLSearchParams("range=custom&from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z"), now);
    expect([c.from, c.to, c.invalid]).toEqual(["2026-12-01T00:00:00.000Z", "2026-12-02T00:00:00.000Z", null]);
    expect(viewOf(new URLSearchParams("range=custom&from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z"), now).invalid).toMatch(/before its end/);
    expect(intervalOf({ from: at(0), to: at(3) })).toBe("minute");
    expect(intervalOf({ from: at(0), to: at(23) })).toBe("hour");
    expect(intervalOf(viewOf(new URLSearchParams("range=30d"), now))).toBe("day");
  });
  it("sends the range and filters of the URL to the page's query", () => {
    const calls: Calls = { queries: [], mutations: [] };
    renderWith(<FailuresPage />, { client: client({}, { calls }), path: "/analytics/failures?range=7d&queue=email&jobType=send" });
    const q = calls.queries.find((v) => "interval" in v)!;
    expect(q).toMatchObject({ queue: "email", jobType: "send", interval: "hour" });
    expect(Date.parse(q.to as string) - Date.parse(q.from as string)).toBe(7 * 86_400_000);
  });
  it("applies a custom range from the range picker", async () => {
    const calls: Calls = { queries: [], mutations: [] };
    const empty = { analytics: { retries: { byJobType: [], byAttempt: [], wastedComputeSeconds: 0 } } };
    renderWith(<RetriesPage />, { client: client(empty, { calls }), path: "/analytics/retries?queue=email" });
    await userEvent.click(screen.getByRole("radio", { name: "Custom" }));
    const form = screen.getByRole("form", { name: "Custom range" });
    fireEvent.change(within(form).getByLabelText(/^From/), { target: { value: "2026-11-01T00:00" } });
    fireEvent.change(within(form).getByLabelText(/^To/), { target: { value: "2026-11-03T12:00" } });
    await userEvent.click(within(form).getByRole("button", { name: "Apply range" }));
    await waitFor(() => expect(calls.queries.at(-1)).toMatchObject({
      from: new Date(2026, 10, 1).toISOString(), to: new Date(2026, 10, 3, 12).toISOString(), queue: "email",
    }));
  });
  it("applies the queue filter typed into the filter bar, and clears it", async () => {
    const calls: Calls = { queries: [], mutations: [] };
    const empty = { analytics: { retries: { byJobType: [], byAttempt: [], wastedComputeSeconds: 0 } } };
    renderWith(<RetriesPage />, { client: client(empty, { calls }), path: "/analytics/retries?range=30d" });
    const queue = within(screen.getByRole("region", { name: "Range and filters" })).getByRole("combobox", { name: "Queue" });
    await userEvent.type(queue, "billing{Enter}");
    await waitFor(() => expect(calls.queries.at(-1)).toMatchObject({ queue: "billing", jobType: null }));
    await userEvent.clear(queue);
    await userEvent.keyboard("{Enter}");
    await waitFor(() => expect(calls.queries.at(-1)).toMatchObject({ queue: null }));
    const last = calls.queries.at(-1)!;
    expect(Date.parse(last.to as string) - Date.parse(last.from as string)).toBe(30 * 86_400_000); // the range stays
  });
  it("classifies changes", () => {
    expect([direction(0.2), direction(-0.01), direction(0), direction(null)]).toEqual(["up", "down", "flat", "none"]);
  });
});

describe("Analytics navigation", () => {
  it("sends a developer who opens an analytics URL to the Queues page", async () => {
    renderWith(<AppRoutes />, { role: "developer", path: "/analytics/cost", data: { queues: [], jobTypes: [], alerts: { firing: 0, alerts: [] } } });
    expect(await screen.findByRole("heading", { level: 1, name: "Queues" })).toBeInTheDocument();
    expect(screen.queryByRole("heading", { name: "Cost" })).toBeNull();
  });
  it("offers the group to admins, expanded with the range carried across pages", () => {
    const { unmount } = renderWith(<Layout />, { role: "admin", path: "/analytics/failures?range=7d&queue=email&job=x" });
    const nav = screen.getByRole("navigation", { name: "Main" });
    expect(within(nav).getByRole("link", { name: "Analytics" })).toBeInTheDocument();
    const group = within(nav).getByRole("group", { name: "Analytics pages" });
    const names = within(group).getAllByRole("link").map((l) => l.textContent);
    expect(names).toEqual(["Executive summary", "Queue deep dive", "Failures", "Retries", "Resources", "Cost", "SLA", "Dependencies"]);
    expect(within(group).getByRole("link", { name: "Cost" })).toHaveAttribute("href", "/analytics/cost?range=7d&queue=email");
    unmount();
    renderWith(<Layout />, { role: "developer", path: "/queues" });
    expect(within(screen.getByRole("navigation", { name: "Main" })).queryByRole("link", { name: "Analytics" })).toBeNull();
  });
});

const summary = {
  processed: trend(12_500, 10_000), succeeded: trend(12_000, 9_800), failed: trend(300, 400), deadLettered: trend(45, 45),
  successRate: trend(0.9963, 0.9954), avgDurationMs: trend(1200, 1000), p50Ms: trend(400, 400), p95Ms: trend(4000, 3000), p99Ms: trend(9000, null),
};
const issues = [
  { kind: "failure_spike", title: "email failures up 4×", detail: "send_welcome fails 12% (was 3%)", queue: "email", jobType: "send_welcome", impact: 120, link: "/analytics/failures?queue=email" },
  { kind: "backlog", title: "reports backlog growing", detail: "2,300 pending, not draining", queue: "reports", jobType: null, impact: 80, link: "/analytics/queues?queue=reports" },
  { kind: "slowdown", title: "resize p95 doubled", detail: "p95 8.1 s (was 4.0 s)", queue: "images", jobType: "resize", impact: 40, link: "/analytics/queues?queue=images&jobType=resize" },
];
const throughput = [
  { at: at(9), submitted: 500, started: 510, completed: 490, failed: 12, deadLettered: 2 },
  { at: at(10), submitted: 700, started: 690, completed: 680, failed: 9, deadLettered: 1 },
];

describe("Executive summary", () => {
  it("shows the big numbers with their trend direction, the top 3 issues and throughput", () => {
    renderWith(<SummaryPage />, { client: client({ analytics: { summary, topIssues: issues, throughput } }), path: "/analytics?range=7d" });
    expect(screen.getByRole("heading", { level: 1, name: "Executive summary" })).toBeInTheDocument();
    const processed = screen.getByRole("region", { name: "Jobs processed" });
    expect(processed).toHaveTextContent("12,500");
    const up = within(processed).getByLabelText("up 25.0% versus the previous 7 days (10,000)");
    expect(up).toHaveAttribute("data-trend", "up");
    expect(within(screen.getByRole("region", { name: "Failed attempts" })).getByLabelText(/^down 25.0%/)).toHaveAttribute("data-trend", "down");
    expect(within(screen.getByRole("region", { name: "Dead-lettered" })).getByLabelText(/^unchanged/)).toHaveAttribute("data-trend", "flat");
    expect(within(screen.getByRole("region", { name: "p99 duration" })).getByText("no previous data")).toHaveAttribute("data-trend", "none");
    expect(screen.getByRole("region", { name: "Success rate" })).toHaveTextContent("99.63%");
    expect(screen.getByRole("region", { name: "Average duration" })).toHaveTextContent("1.2 s");
    const list = screen.getByRole("region", { name: "Needs attention" });
    expect(within(list).getAllByRole("listitem")).toHaveLength(3);
    expect(within(list).getByRole("link", { name: "Investigate: email failures up 4×" })).toHaveAttribute("href", "/analytics/failures?queue=email");
    expect(screen.getByRole("img", { name: /Bar chart: jobs submitted.*per hour/ })).toBeInTheDocument();
    const table = screen.getByRole("table", { name: "Throughput" });
    expect(within(table).getAllByRole("row")).toHaveLength(3);
    expect(table).toHaveTextContent("680");
  });
  it("shows the AI top issues with their impact and links, and the recent anomalies", () => {
    const aiTopIssues = { issues: [
      { kind: "slow_job_type", title: "resize is slow", detail: "resize on images: p95 8.1 s is 4.0x its previous-period p95 2.0 s", queue: "images", jobType: "resize", impactJobs: 47.5, impactSlaMinutes: 0, link: "/analytics/queues?queue=images&jobType=resize", narrated: false },
      { kind: "sla", title: "SLA missed on email", detail: "70.0% of email's jobs within 1.0 s", queue: "email", jobType: null, impactJobs: 30, impactSlaMinutes: 2.4, link: "/analytics/sla?queue=email", narrated: true },
      { kind: "dead_letters", title: "20 dead letters in export: HTTPError", detail: "retry this group", queue: "dq", jobType: "export", impactJobs: 1, impactSlaMinutes: 0, link: "/dead-letters?jobType=export", narrated: false },
    ] };
    const anomalies = [
      { id: 1, metric: "failure_rate", queue: "email", detectedAt: at(8), endedAt: at(9), currentValue: 0.4, baseline: 0.02, peakScore: 11, possibleCauses: ["ValueError in parse: 30 failures in 5 min"], causesSummary: null },
      { id: 2, metric: "duration_p95", queue: "images", detectedAt: at(10), endedAt: null, currentValue: 8100, baseline: 2000, peakScore: 7.5, possibleCauses: [], causesSummary: null },
    ];
    const calls: Calls = { queries: [], mutations: [] };
    renderWith(<SummaryPage />, { client: client({ analytics: { summary, topIssues: issues, throughput }, aiTopIssues, anomalies }, { calls }), path: "/analytics?range=7d" });
    const panel = screen.getByRole("region", { name: "Top issues" });
    const items = within(panel).getAllByRole("listitem");
    expect(items).toHaveLength(3);
    expect(items[0]).toHaveTextContent("resize is slow");
    expect(items[0]).toHaveTextContent("Impact: 48 jobs at stake");
    expect(items[1]).toHaveTextContent("Impact: 30 jobs at stake · 2.4 SLA minutes");
    expect(items[2]).toHaveTextContent("Impact: 1 job at stake");
    expect(within(items[2]).getByRole("link", { name: "Investigate: 20 dead letters in export: HTTPError" })).toHaveAttribute("href", "/dead-letters?jobType=export");
    expect(within(items[1]).getByRole("link")).toHaveAttribute("href", "/analytics/sla?queue=email");
    const ai = calls.queries.find((v) => "fromMs" in v)!;
    expect(ai.fromMs).toBe(Date.parse(ai.from as string));
    expect(ai.toMs).toBe(Date.parse(ai.to as string));
    const recent = screen.getByRole("region", { name: "Recent anomalies" });
    const rows = within(recent).getAllByRole("listitem");
    expect(rows.map((r) => r.getAttribute("aria-label"))).toEqual(["Anomaly: duration p95 on images", "Anomaly: failure rate on email"]);
    expect(rows[0]).toHaveTextContent("ongoing");
    expect(rows[1]).toHaveTextContent("ValueError in parse: 30 failures in 5 min");
  });
  it("says when there is no AI issue or anomaly", () => {
    renderWith(<SummaryPage />, { client: client({ analytics: { summary, topIssues: [], throughput }, aiTopIssues: { issues: [] }, anomalies: [] }), path: "/analytics" });
    expect(screen.getByRole("region", { name: "Top issues" })).toHaveTextContent("No issue found in this range.");
    expect(screen.getByRole("region", { name: "Recent anomalies" })).toHaveTextContent("No anomaly detected in this range.");
  });
  it("says when the range is empty", () => {
    const zero = Object.fromEntries(Object.keys(summary).map((k) => [k, trend(0, 0)]));
    renderWith(<SummaryPage />, { client: client({ analytics: { summary: zero, topIssues: [], throughput: [] } }), path: "/analytics?queue=nope" });
    expect(screen.getByRole("status")).toHaveTextContent("No data for this range (queue nope).");
    expect(screen.queryByRole("region", { name: "Jobs processed" })).toBeNull();
  });
  it("shows the API's error", () => {
    renderWith(<SummaryPage />, { client: client({}, { error: "to: must be after from" }), path: "/analytics" });
    expect(screen.getByRole("alert")).toHaveTextContent("to: must be after from");
  });
  it("does not ask the API about a reversed custom range", () => {
    const calls: Calls = { queries: [], mutations: [] };
    renderWith(<SummaryPage />, { client: client({}, { calls }), path: "/analytics?range=custom&from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z" });
    expect(screen.getByRole("alert")).toHaveTextContent("The start of the range must be before its end.");
    expect(calls.queries.filter((v) => "interval" in v)).toHaveLength(0);
  });
});

const health = (queue: string, depth: number, clear: number | null) => ({
  queue, depth: [{ at: at(9), value: depth / 2 }, { at: at(10), value: depth }], oldestPendingAgeMs: [{ at: at(10), value: 90_000 }],
  currentDepth: depth, currentOldestPendingAgeMs: 90_000, throughputPerMinute: 12.5, utilization: 0.8, estimatedClearMs: clear,
});

describe("Queue deep dive", () => {
  const data = {
    all: { queuesHealth: [health("email", 40, 192_000), health("reports", 2300, null), health("idle", 0, null)] },
    selected: { durations: { count: 900, p50Ms: 120, p95Ms: 800, p99Ms: 2000, histogram: [{ lowerMs: 100, upperMs: 104, count: 9 }],
      byJobType: [{ queue: "email", jobType: "send_welcome", count: 900, avgMs: 150, p50Ms: 120, p95Ms: 800, p99Ms: 2000 }] } },
  };
  it("compares queues side by side and drills down to one queue and its job types", () => {
    renderWith(<QueuesPage />, { client: client(data), path: "/analytics/queues?queue=email" });
    const table = screen.getByRole("table", { name: "Queues side by side" });
    const reports = within(table).getByRole("row", { name: /reports/ });
    expect(reports).toHaveTextContent("2,300");
    expect(reports).toHaveTextContent("not draining");
    expect(within(table).getByRole("link", { name: "reports" })).toHaveAttribute("href", "/analytics/queues?queue=reports");
    const picked = screen.getByRole("region", { name: "Queue email" });
    expect(within(picked).getByRole("region", { name: "Estimated time to clear" })).toHaveTextContent("~3.2 min");
    expect(within(picked).getByRole("region", { name: "Utilization" })).toHaveTextContent("80%");
    const types = screen.getByRole("table", { name: "Durations by job type" });
    expect(within(types).getByRole("link", { name: "send_welcome" })).toHaveAttribute("href", "/analytics/queues?queue=email&jobType=send_welcome");
    expect(types).toHaveTextContent("800 ms");
    expect(screen.getByRole("img", { name: /pending jobs over time for reports, email, idle/ })).toBeInTheDocument();
  });
  it("labels backlogs and picks the deepest queues to compare", () => {
    expect(clearLabel({ currentDepth: 0, estimatedClearMs: null })).toBe("no backlog");
    expect(clearLabel({ currentDepth: 5, estimatedClearMs: null })).toBe("not draining");
    const hs = [health("a", 1, 1), health("b", 9, 1)];
    expect(compared(hs, null)).toEqual(["b", "a"]);
    expect(compared(hs, "a,zzz")).toEqual(["a"]);
  });
  it("says when no queue has data", () => {
    renderWith(<QueuesPage />, { client: client({ all: { queuesHealth: [] }, selected: { durations: { ...data.selected.durations, count: 0, byJobType: [], histogram: [] } } }), path: "/analytics/queues" });
    expect(screen.getByRole("status")).toHaveTextContent("No data for this range");
  });
});

describe("Failures", () => {
  it("shows error types, the failure-rate trend, the worst job types and time to failure", () => {
    renderWith(<FailuresPage />, {
      client: client({ analytics: {
        summary: { failed: trend(300, 200), deadLettered: trend(10, 20) },
        failures: {
          errorTypes: [{ errorType: "SmtpTimeout", count: 250, share: 0.8333 }, { errorType: "unknown", count: 50, share: 0.1667 }],
          trend: [{ at: at(9), failed: 10, finished: 100, rate: 0.1 }, { at: at(10), failed: 0, finished: 0, rate: null }],
          topJobTypes: [{ queue: "email", jobType: "send_welcome", failed: 250, finished: 1000, rate: 0.25 }],
          timeToFailure: [{ lowerMs: 30_000, upperMs: 31_000, count: 7 }],
        } } }),
      path: "/analytics/failures",
    });
    expect(within(screen.getByRole("region", { name: "Failed attempts" })).getByLabelText(/^up 50.0%/)).toHaveAttribute("data-trend", "up");
    expect(screen.getByRole("table", { name: "Error types" })).toHaveTextContent("83.3%");
    const worst = screen.getByRole("table", { name: "Job types with the highest failure rate" });
    expect(within(worst).getByRole("row", { name: /send_welcome/ })).toHaveTextContent("25.0%");
    expect(within(worst).getByRole("link", { name: "Failed send_welcome jobs in email" })).toHaveAttribute("href", "/jobs?queue=email&type=send_welcome&status=FAILED");
    expect(screen.getByRole("table", { name: "Failure rate" })).toHaveTextContent("—"); // no finished attempts: no rate
    expect(screen.getByRole("table", { name: "Time to failure" })).toHaveTextContent("16.4 s–32.8 s");
    expect(screen.getByRole("img", { name: "Histogram: how long failed attempts ran before failing" })).toBeInTheDocument();
  });
});

describe("Retries", () => {
  it("shows retries per type, success by attempt number and wasted compute", () => {
    renderWith(<RetriesPage />, {
      client: client({ analytics: { retries: {
        byJobType: [
          { queue: "email", jobType: "send_welcome", jobs: 1000, retries: 150, avgRetries: 0.15, wastedComputeSeconds: 600 },
          { queue: "billing", jobType: "charge", jobs: 100, retries: 80, avgRetries: 0.8, wastedComputeSeconds: 7200 },
        ],
        byAttempt: [{ attempt: 1, completed: 850, failed: 150, successRate: 0.85 }, { attempt: 2, completed: 100, failed: 50, successRate: 0.6667 }],
        wastedComputeSeconds: 7800,
      } } }),
      path: "/analytics/retries",
    });
    expect(screen.getByRole("region", { name: "Wasted compute" })).toHaveTextContent("2.2 h");
    expect(screen.getByRole("region", { name: "Average retries per job" })).toHaveTextContent("0.21");
    const rows = within(screen.getByRole("table", { name: "Retries by job type" })).getAllByRole("row");
    expect(rows[1]).toHaveTextContent("charge"); // the most retried type first
    expect(rows[1]).toHaveTextContent("0.80");
    expect(within(screen.getByRole("table", { name: "Success rate by attempt number" })).getByRole("row", { name: /^2/ })).toHaveTextContent("66.7%");
  });
});

describe("Resources", () => {
  it("shows the fleet and the stores, without queue filters", () => {
    renderWith(<ResourcesPage />, {
      client: client({ analytics: { resources: {
        workerCount: [{ at: at(9), value: 3 }, { at: at(10), value: 4 }], utilization: [{ at: at(10), value: 0.7 }], idleRatio: 0.3,
        perWorker: [{ workerId: "host:default:a1", cpuPct: 41.6, rssBytes: 80 * 1024 * 1024 }], crashes: 2, crashRatePerHour: 0.0833,
        redisMemoryBytes: [{ at: at(10), value: 5 * 1024 * 1024 }], postgresBytes: [{ at: at(10), value: 3 * 1024 ** 3 }],
        tables: [{ table: "jobs", bytes: 2 * 1024 ** 3 }], eventLag: [{ subject: "relay", points: [{ at: at(10), value: 12 }] }],
      } } }),
      path: "/analytics/resources",
    });
    expect(screen.getByRole("region", { name: "Workers now" })).toHaveTextContent("4");
    expect(screen.getByRole("region", { name: "Crash rate" })).toHaveTextContent("0.08/h");
    expect(within(screen.getByRole("table", { name: "CPU and memory per worker" })).getByRole("row", { name: /host:default:a1/ })).toHaveTextContent("42%80.0 MiB");
    expect(screen.getByRole("table", { name: "Table sizes" })).toHaveTextContent("2.0 GiB");
    expect(screen.getByRole("table", { name: "PostgreSQL size" })).toHaveTextContent("3.0 GiB");
    expect(screen.queryByRole("textbox", { name: "Queue" })).toBeNull();
  });
});

const cost = {
  groupBy: "queue", totalCost: 12.5, storageGrowthBytesPerDay: 50 * 1024 * 1024, projectedMonthlyCost: 375, defaultPricePerWorkerHour: 0.1,
  rows: [{ key: "video", jobs: 1000, workerHours: 100, cost: 10, costPerJob: 0.01 }, { key: "email", jobs: 50_000, workerHours: 25, cost: 2.5, costPerJob: 0.00005 }],
  mostExpensiveJobTypes: [{ key: "transcode", jobs: 1000, workerHours: 100, cost: 10, costPerJob: 0.01 }],
};

describe("Cost", () => {
  it("shows cost by queue, the projection and storage growth", () => {
    renderWith(<CostPage />, { client: client({ analytics: { cost } }), path: "/analytics/cost" });
    expect(screen.getByRole("region", { name: "Projected monthly cost" })).toHaveTextContent("$375.00");
    expect(screen.getByRole("region", { name: "Storage growth" })).toHaveTextContent("50.0 MiB/day");
    expect(within(screen.getByRole("table", { name: "Cost by queue" })).getByRole("row", { name: /video/ })).toHaveTextContent("$10.00");
    expect(screen.getByRole("table", { name: "Most expensive job types" })).toHaveTextContent("transcode");
    expect(within(screen.getByRole("table", { name: "Cost by queue" })).getByRole("row", { name: /email/ })).toHaveTextContent("$0.00005"); // not $0.00
  });
  it("validates the price form, then sets the queue's price", async () => {
    const calls: Calls = { queries: [], mutations: [] };
    renderWith(<CostPage />, { client: client({ analytics: { cost } }, { calls }), path: "/analytics/cost" });
    const form = screen.getByRole("form", { name: "Set a queue's price" });
    await userEvent.click(within(form).getByRole("button", { name: "Save price" }));
    expect(within(form).getByText("Enter a queue name.")).toBeInTheDocument();
    expect(within(form).getByText("Enter a price per worker-hour.")).toBeInTheDocument();
    expect(calls.mutations).toEqual([]);
    await userEvent.type(within(form).getByRole("combobox", { name: "Queue" }), "video");
    await userEvent.type(within(form).getByRole("textbox", { name: "Price per worker-hour (USD)" }), "0.12");
    await userEvent.click(within(form).getByRole("button", { name: "Save price" }));
    await waitFor(() => expect(calls.mutations).toEqual([{ queue: "video", pricePerWorkerHour: 0.12 }]));
    expect(await screen.findByRole("status")).toHaveTextContent("video now costs $0.12 per worker-hour.");
    expect(costErrors("q", -1)).toEqual({ price: "The price cannot be negative." });
    expect(costErrors("q", 0)).toEqual({});
  });
});

describe("SLA", () => {
  const sla = [
    { queue: "email", objective: 0.95, targetMs: 300_000, metric: "e2e", compliance: 0.9712, met: true, violations: 288, trend: [{ at: at(10), compliance: 0.97 }] },
    { queue: "reports", objective: 0.99, targetMs: 60_000, metric: "wait", compliance: 0.9, met: false, violations: 1000, trend: [] },
  ];
  it("shows compliance per queue, whether it was met, and violations", () => {
    renderWith(<SlaPage />, { client: client({ analytics: { sla } }), path: "/analytics/sla" });
    const table = screen.getByRole("table", { name: "SLA compliance by queue" });
    const email = within(table).getByRole("row", { name: /email/ });
    expect(email).toHaveTextContent("95% within 5.0 min (end to end)");
    expect(email).toHaveTextContent("97.12%");
    expect(within(email).getByText("met")).toBeInTheDocument();
    expect(within(within(table).getByRole("row", { name: /reports/ })).getByText("missed")).toBeInTheDocument();
    expect(screen.getByRole("img", { name: /share of jobs within their queue's SLA target/ })).toBeInTheDocument();
  });
  it("validates the form and sets \"95% within 5 minutes\"", async () => {
    const calls: Calls = { queries: [], mutations: [] };
    renderWith(<SlaPage />, { client: client({ analytics: { sla: [] } }, { calls }), path: "/analytics/sla" });
    expect(screen.getByRole("status")).toHaveTextContent("No queue has an SLA yet");
    const form = screen.getByRole("form", { name: "Set a queue's SLA" });
    const objective = within(form).getByRole("textbox", { name: "Objective (%)" });
    await userEvent.clear(objective);
    await userEvent.type(objective, "100");
    await userEvent.click(within(form).getByRole("button", { name: "Save SLA" }));
    expect(within(form).getByText("Enter a queue name.")).toBeInTheDocument();
    expect(within(form).getByText("The objective is a percentage above 0 and below 100.")).toBeInTheDocument();
    expect(calls.mutations).toEqual([]);
    await userEvent.clear(objective);
    await userEvent.type(objective, "95");
    await userEvent.type(within(form).getByRole("combobox", { name: "Queue" }), "email");
    await userEvent.click(within(form).getByRole("button", { name: "Save SLA" }));
    await waitFor(() => expect(calls.mutations).toEqual([{ queue: "email", objective: 0.95, targetMs: 300_000, metric: "e2e" }]));
    expect(await screen.findByText("Saved — email: 95% within 5.0 min (end to end).")).toHaveAttribute("role", "status");
  });
  it("converts units and rejects a zero target", () => {
    expect(slaVariables({ queue: " q ", objectivePct: 99.9, target: 2, unit: "s", metric: "wait" })).toEqual({ queue: "q", objective: 0.999, targetMs: 2000, metric: "wait" });
    expect(slaErrors({ queue: "q", objectivePct: 95, target: 0, unit: "s", metric: "e2e" })).toEqual({ target: "The target must be above zero." });
    expect(slaText({ objective: 0.999, targetMs: 2000, metric: "wait" })).toBe("99.9% within 2.0 s (wait)");
  });
});

describe("Dependencies", () => {
  const node = (jobId: string, jobType: string, onCriticalPath: boolean, durationMs: number) => ({
    jobId, jobType, queue: "reports", status: "COMPLETED", startedAt: at(9), completedAt: at(10), durationMs, waitMs: 50, onCriticalPath,
  });
  const cp = {
    jobId: "j3", totalMs: 5100,
    nodes: [node("j1", "extract", true, 3000), node("j2", "lookup", false, 200), node("j3", "render", true, 2000)],
    edges: [{ from: "j1", to: "j3" }, { from: "j2", to: "j3" }],
    path: ["j1", "j3"],
    bottlenecks: [{ jobId: "j1", jobType: "extract", reason: "58% of the critical path", ms: 3000 }],
  };
  it("asks for a job id, and says so when none is entered", async () => {
    const calls: Calls = { queries: [], mutations: [] };
    renderWith(<DependenciesPage />, { client: client({ criticalPath: cp }, { calls }), path: "/analytics/dependencies" });
    expect(screen.getByRole("status")).toHaveTextContent("Enter a job id");
    await userEvent.click(screen.getByRole("button", { name: "Show critical path" }));
    expect(screen.getByText("Enter a job id.")).toBeInTheDocument();
    expect(calls.queries.filter((v) => "jobId" in v)).toHaveLength(0);
    await userEvent.type(screen.getByRole("textbox", { name: "Job id" }), "j3");
    await userEvent.click(screen.getByRole("button", { name: "Show critical path" }));
    expect(await screen.findByRole("region", { name: "Critical path time" })).toHaveTextContent("5.1 s");
    expect(calls.queries.some((v) => v.jobId === "j3")).toBe(true);
  });
  it("draws the DAG with the critical path in order and the bottlenecks", async () => {
    renderWith(<DependenciesPage />, { client: client({ criticalPath: cp }), path: "/analytics/dependencies?job=j3" });
    expect(screen.getByRole("figure", { name: "Dependency graph of job j3" })).toBeInTheDocument();
    expect(await screen.findByRole("button", { name: "j1 (critical)" })).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "j2" })).toBeInTheDocument();
    const path = screen.getByRole("list", { name: "Critical path, first job first" });
    expect(within(path).getAllByRole("listitem").map((li) => li.textContent?.split(" · ")[0])).toEqual(["extract", "render"]);
    expect(within(screen.getByRole("table", { name: "Bottlenecks" })).getByRole("row", { name: /extract/ })).toHaveTextContent("58% of the critical path");
    expect(screen.getByRole("region", { name: "Jobs in the graph" })).toHaveTextContent("3");
  });
  it("shows the API's error for an unknown job", () => {
    renderWith(<DependenciesPage />, { client: client({}, { error: "job not found" }), path: "/analytics/dependencies?job=nope" });
    expect(screen.getByRole("alert")).toHaveTextContent("job not found");
  });
});
