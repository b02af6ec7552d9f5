import { screen, within } from "@testing-library/react";
import { Layout } from "./shell/Layout";
import { QueuesPage } from "./queues/QueuesPage";
import { csvUrl, dlqFilter } from "./dead-letters/DeadLettersPage";
import { heatmapCells } from "./charts/ChartsPage";
import { bars } from "./timeline/TimelinePage";
import { renderWith } from "./test/render";
import { SignIn } from "./auth/SignIn";
import { render } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MantineProvider } from "@mantine/core";

const counts = { waiting: 0, pending: 4, scheduled: 0, processing: 1, completed: 9, failed: 2, deadLetter: 1, cancelled: 0 };

describe("navigation", () => {
  it("offers admins every page and developers only what their key may read", () => {
    const { unmount } = renderWith(<Layout />, { role: "admin" });
    const nav = screen.getByRole("navigation", { name: "Main" });
    for (const name of ["Queues", "Jobs", "Timeline", "Workers", "Dead letters", "Schedules", "Batches", "Charts"]) {
      expect(within(nav).getByRole("link", { name })).toBeInTheDocument();
    }
    unmount();
    renderWith(<Layout />, { role: "developer" });
    const devNav = screen.getByRole("navigation", { name: "Main" });
    expect(within(devNav).queryByRole("link", { name: "Dead letters" })).toBeNull();
    expect(within(devNav).queryByRole("link", { name: "Workers" })).toBeNull();
    expect(within(devNav).getByRole("link", { name: "Jobs" })).toBeInTheDocument();
  });
});

describe("QueuesPage", () => {
  it("shows a developer counts and state, without controls", () => {
    renderWith(<QueuesPage />, {
      role: "developer",
      data: { queues: [{ name: "email", counts, controls: { name: "email", paused: true, maxInFlight: null, rateLimit: null } }] },
    });
    const table = screen.getByRole("table", { name: "Queues" });
    expect(within(table).getAllByRole("columnheader").map((h) => h.textContent)).toContain("Pending");
    expect(within(table).getByRole("rowheader", { name: "email" })).toBeInTheDocument();
    expect(within(table).getByText("paused")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: /Pause|Resume|Limits/ })).toBeNull();
  });
  it("shows an admin health with its rule, live figures and the controls", () => {
    renderWith(<QueuesPage />, {
      role: "admin",
      data: {
        queueMetrics: [{ name: "email", ready: 4, delayed: 0, leased: 1, paused: false, maxInFlight: 3, rateLimit: { limit: 5, windowMs: 1000 }, oldestPendingAgeMs: 400_000, throughputPerMin: 1, failedPerMin: 0, failureRate: 0, avgDurationMs: 120, health: "lagging" }],
        workers: [{ id: "w1", queues: ["email"], status: "busy" }, { id: "w2", queues: ["other"], status: "idle" }],
        queues: [{ name: "email", counts, controls: { name: "email", paused: false, maxInFlight: 3, rateLimit: { limit: 5, windowMs: 1000 } } }],
        throughputSeries: [{ minuteMs: 0, completed: 7, failed: 2 }, { minuteMs: 60_000, completed: 3, failed: 0 }],
      },
    });
    const row = screen.getByRole("row", { name: /email/ });
    expect(within(row).getByLabelText(/^lagging: Lagging: the oldest ready job has waited more than 5 minutes/)).toBeInTheDocument();
    expect(row).toHaveTextContent("5/1000 ms · cap 3");
    expect(within(row).getByText("10")).toBeInTheDocument(); // completed today: 7 + 3
    expect(within(row).getByRole("button", { name: "Pause email" })).toBeInTheDocument();
  });
});

describe("Queues: job types no worker serves", () => {
  const jobTypes = [
    { jobType: "resize_avatar", queue: "avatars", served: false, unservedJobs: 3, unservedQueues: ["avatars"] },
    { jobType: "send_email", queue: "email", served: true, unservedJobs: 0, unservedQueues: [] },
    { jobType: "old_report", queue: "email", served: false, unservedJobs: 0, unservedQueues: [] },
    { jobType: "typo_type", queue: null, served: false, unservedJobs: 10_000, unservedQueues: ["inbox", "outbox"] },
  ];
  const metric = (name: string) => ({ name, ready: 3, delayed: 0, leased: 0, paused: false, maxInFlight: null, rateLimit: null, oldestPendingAgeMs: 0, throughputPerMin: 0, failedPerMin: 0, failureRate: 0, avgDurationMs: null, health: "healthy" });
  it("names each unserved type with waiting jobs in an alert and marks its queue's row", () => {
    renderWith(<QueuesPage />, {
      role: "admin",
      data: { queueMetrics: [metric("avatars"), metric("email"), metric("outbox")], workers: [], queues: [], throughputSeries: [], jobTypes },
    });
    const alert = screen.getByRole("alert");
    expect(alert).toHaveTextContent("resize_avatar: 3 jobs waiting in queue avatars, no running worker handles this type");
    expect(alert).toHaveTextContent("typo_type: 10,000+ jobs waiting in queues inbox, outbox, no running worker handles this type (no worker has ever registered a handler for it)");
    expect(alert).not.toHaveTextContent("send_email");
    expect(alert).not.toHaveTextContent("old_report"); // unserved, but nothing waits for it
    expect(within(screen.getByRole("row", { name: /avatars/ })).getByText("no worker: resize_avatar")).toBeInTheDocument();
    expect(screen.getByRole("row", { name: /outbox/ })).toHaveTextContent("no worker: typo_type");
    expect(screen.getByRole("row", { name: /email/ })).not.toHaveTextContent("no worker");
  });
  it("shows developers the same notice, and nothing when every waiting type is served", () => {
    const { unmount } = renderWith(<QueuesPage />, {
      role: "developer",
      data: { queues: [{ name: "avatars", counts, controls: { name: "avatars", paused: false, maxInFlight: null, rateLimit: null } }], jobTypes },
    });
    expect(screen.getByRole("alert")).toHaveTextContent("resize_avatar: 3 jobs waiting in queue avatars");
    expect(screen.getByRole("row", { name: /avatars/ })).toHaveTextContent("no worker: resize_avatar");
    unmount();
    renderWith(<QueuesPage />, {
      role: "developer",
      data: { queues: [], jobTypes: [jobTypes[1], jobTypes[2]] },
    });
    expect(screen.queryByRole("alert")).toBeNull();
  });
});

describe("SignIn", () => {
  it("has a field labelled API key and says when the key is refused", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response("{}", { status: 401 })));
    const done = vi.fn();
    render(<MantineProvider><SignIn onSignedIn={done} /></MantineProvider>);
    await userEvent.type(screen.getByLabelText(/^API key/), "jl_wrong");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("not valid");
    expect(done).not.toHaveBeenCalled();
    vi.unstubAllGlobals();
  });
});

describe("dead-letter filter", () => {
  it("goes from the URL to GraphQL and to the CSV export's query", () => {
    const f = dlqFilter(new URLSearchParams("queue=email&type=send&errorType=Timeout"));
    expect(f).toEqual({ queue: "email", jobType: "send", errorType: "Timeout" });
    expect(csvUrl(f)).toBe("/api/v1/admin/dlq.csv?queue=email&jobType=send&errorType=Timeout");
    expect(csvUrl({})).toBe("/api/v1/admin/dlq.csv");
  });
});

describe("chart data", () => {
  it("buckets submissions by weekday and hour", () => {
    const monday9 = new Date(2026, 0, 5, 9, 30).getTime(); // 5 Jan 2026 is a Monday
    const cells = heatmapCells([{ minuteMs: monday9, submitted: 3 }, { minuteMs: monday9 + 60_000, submitted: 2 }]);
    expect(cells).toHaveLength(24 * 7);
    expect(cells.find(([h, d]) => h === 9 && d === 0)![2]).toBe(5);
  });
  it("lays Gantt bars in lanes, running jobs up to now", () => {
    const item = (id: string, workerId: string | null, startMs: number | null, endMs: number | null, status = "completed") =>
      ({ id, queue: "q", jobType: "t", status, createdMs: 0, startMs, endMs, durationMs: null, attempts: 1, workerId });
    const { lanes, rows } = bars([item("a", "w1", 10, 20), item("b", "w2", 15, null, "processing"), item("c", null, null, null)], "worker", 99);
    expect(lanes).toEqual(["w1", "w2"]);
    expect(rows).toEqual([[0, 10, 20, "completed", "a"], [1, 15, 99, "processing", "b"]]);
  });
});

describe("WorkersPage", () => {
  it("shows each worker's CPU and memory from its heartbeat, a dash before the second one", async () => {
    const { WorkersPage } = await import("./workers/WorkersPage");
    const w = { queues: ["email"], concurrency: 4, host: "h", pid: 1, status: "busy", running: 1, currentJobs: [], startedAt: null, lastSeenAt: null, uptimeMs: 1000, processed: 3, failed: 0 };
    renderWith(<WorkersPage history={false} />, {
      data: { workers: [{ ...w, id: "w1", cpuPercent: 42.4, rssBytes: 50 * 1024 * 1024 }, { ...w, id: "w2", cpuPercent: null, rssBytes: null }] },
    });
    const table = screen.getByRole("table", { name: "Workers" });
    expect(within(table).getByRole("columnheader", { name: "CPU" })).toBeInTheDocument();
    expect(within(table).getByRole("row", { name: /w1/ })).toHaveTextContent("42%");
    expect(within(table).getByRole("row", { name: /w1/ })).toHaveTextContent("50 MiB");
    expect(within(within(table).getByRole("row", { name: /w2/ })).getAllByText("—").length).toBeGreaterThanOrEqual(2);
  });
});

describe("Timeline keyboard cursor", () => {
  it("walks bars within a lane by start, jumps lanes to the nearest start, stops at the ends", async () => {
    const { laneOrder, moveCursor } = await import("./timeline/TimelinePage");
    const rows: [number, number, number, string, string][] = [
      [0, 300, 400, "completed", "a3"], [0, 100, 200, "completed", "a1"], [1, 290, 310, "failed", "b2"],
      [1, 0, 10, "completed", "b1"], [0, 200, 250, "completed", "a2"],
    ];
    const order = laneOrder(rows, 2);
    expect(order).toEqual([[1, 4, 0], [3, 2]]);
    let cur = moveCursor("ArrowRight", null, rows, order); // first focus: lane 0's first bar
    expect(rows[cur!][4]).toBe("a1");
    cur = moveCursor("ArrowRight", cur, rows, order);
    expect(rows[cur!][4]).toBe("a2");
    cur = moveCursor("End", cur, rows, order);
    expect(rows[cur!][4]).toBe("a3");
    expect(moveCursor("ArrowRight", cur, rows, order)).toBe(cur); // stays at the lane's end
    cur = moveCursor("ArrowDown", cur, rows, order); // a3 starts at 300: nearest in lane 1 is b2
    expect(rows[cur!][4]).toBe("b2");
    expect(moveCursor("ArrowDown", cur, rows, order)).toBe(cur); // no lane below
    expect(rows[moveCursor("ArrowUp", cur, rows, order)!][4]).toBe("a3");
  });
});

describe("Timeline density", () => {
  it("places each cell in its lane and slice and keeps the largest count for the scale", async () => {
    const { densityRows } = await import("./timeline/TimelinePage");
    const { lanes, rows, max } = densityRows([
      { lane: "w1", bucket: 0, jobs: 3, failed: 0 }, { lane: "w2", bucket: 2, jobs: 40, failed: 5 }, { lane: "w1", bucket: 1, jobs: 1, failed: 1 },
    ], 1_000, 500);
    expect(lanes).toEqual(["w1", "w2"]);
    expect(rows).toEqual([[0, 1_000, 1_500, 3, 0], [1, 2_000, 2_500, 40, 5], [0, 1_500, 2_000, 1, 1]]);
    expect(max).toBe(40);
  });
});

describe("Gantt canvas drawing", () => {
  it("orders bars by style, lane and start, and merges a lane's bars that share pixels", async () => {
    const { drawOrder, mergeSpans, toGantt } = await import("./timeline/GanttCanvas");
    const d = toGantt([[1, 50, 60, "x"], [0, 30, 40, "y"], [0, 10, 20, "x"], [0, 0, 5, "x"]], (r) => (r[3] === "x" ? 0 : 1));
    expect([...drawOrder(d)]).toEqual([3, 2, 0, 1]);
    // 1 px per ms: 0-5 and 10-20 stay apart; at 0.02 px/ms they are one rect (a bar is >= 1 px)
    expect(mergeSpans([0, 10], [5, 20], 0, 1)).toEqual([[0, 5], [10, 10]]);
    const merged = mergeSpans([0, 10], [5, 20], 0, 0.02);
    expect(merged).toHaveLength(1);
    expect(merged[0][0]).toBe(0);
    expect(merged[0][1]).toBeCloseTo(1.2);
    // 10,000 one-ms bars back to back over 10 s on 1,000 px: one rect, not 10,000
    const starts = Array.from({ length: 10_000 }, (_, i) => i);
    expect(mergeSpans(starts, starts.map((s) => s + 1), 0, 0.1)).toHaveLength(1);
  });
  it("spaces time labels at least 90 px apart on round steps", async () => {
    const { tickStep } = await import("./timeline/GanttCanvas");
    expect(tickStep(10 * 60_000, 1000)).toBe(60_000); // 10 minutes on 1,000 px: a label a minute
    expect(tickStep(1000, 1000)).toBe(100);
    expect(tickStep(86_400_000, 900)).toBe(10_800_000);
  });
  it("shades density cells by log count, red where 1 in 10 failed", async () => {
    const { densityStyle } = await import("./timeline/TimelinePage");
    expect(densityStyle(1000, 0, 1000)).toBe(7); // the darkest green
    expect(densityStyle(1000, 100, 1000)).toBe(15); // the darkest red
    expect(densityStyle(1, 0, 1000)).toBeLessThan(densityStyle(100, 0, 1000));
  });
});
