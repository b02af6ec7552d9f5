import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { filterFromParams } from "./filters";
import { JobDetails } from "./JobDrawer";
import { layout } from "./DependencyGraph";
import { fakeClient, renderWith } from "../test/render";
import type { Client } from "urql";
import type { JobDetailFragment, JobProgressDetailFragment } from "../gql/graphql";

describe("filterFromParams", () => {
  it("reads every filter from the URL", () => {
    const { filter, payloadError } = filterFromParams(new URLSearchParams(
      "queue=email&status=dead_letter&type=send&errorType=Timeout&q=boom&payload=%7B%22userId%22%3A123%7D"));
    expect(payloadError).toBeNull();
    expect(filter).toEqual({ queue: "email", status: "DEAD_LETTER", jobType: "send", errorType: "Timeout", search: "boom", payloadMatch: { userId: 123 } });
  });
  it("refuses a payload filter that is not a JSON object", () => {
    expect(filterFromParams(new URLSearchParams("payload=[1]")).payloadError).toMatch(/JSON object/);
    expect(filterFromParams(new URLSearchParams("payload={bad")).payloadError).toMatch(/JSON object/);
    expect(filterFromParams(new URLSearchParams("status=nonsense")).filter.status).toBeUndefined();
  });
});

const base: JobDetailFragment = {
  id: "0193a1b2-0000-7000-8000-000000000001", queue: "email", jobType: "send", status: "DEAD_LETTER",
  priority: 0, attempts: 3, maxAttempts: 3, payload: { to: "a@b.c", password: "***" }, result: null, error: "boom",
  errorType: "Timeout", createdAt: "2026-01-01T00:00:00Z", startedAt: "2026-01-01T00:00:01Z", completedAt: "2026-01-01T00:00:02Z",
  scheduledFor: "2026-01-01T00:00:00Z", timeoutMs: null, idempotencyKey: null, workerId: "w1", batchId: null,
  attemptHistory: [{ attempt: 1, workerId: "w1", startedAt: "2026-01-01T00:00:01Z", finishedAt: "2026-01-01T00:00:02Z", outcome: "failed", errorType: "Timeout", error: "boom", durationMs: 1000,
    retryDecision: { retry: true, delayMs: 45000, successProbability: 0.91, reason: "19 of 21 retries succeeded after waiting ~45 s" } }],
  dependsOn: [], resultExpired: false, resultExpiresAt: null, progress: null,
};

const progress: JobProgressDetailFragment = {
  jobId: base.id, attempt: 2, fraction: 0.4, message: "resizing", logsDropped: 3, updatedAt: "2026-01-01T00:00:05Z",
  logs: [{ time: "2026-01-01T00:00:04Z", message: "opened image.png" }, { time: "2026-01-01T00:00:05Z", message: "token=***" }],
};

/** A client whose subscriptions deliver `items` once subscribed. */
function liveClient(items: unknown[]): Client {
  const c = fakeClient({});
  (c as unknown as { subscription: unknown }).subscription = () => ({
    subscribe: (cb: (r: { data: unknown }) => void) => {
      queueMicrotask(() => items.forEach((data) => cb({ data })));
      return { unsubscribe: () => {} };
    },
  });
  return c;
}

describe("JobDetails", () => {
  it("offers Retry for a dead letter, not Cancel, and shows the payload as JSON", async () => {
    const calls = { mutations: [] as unknown[] };
    renderWith(<JobDetails job={base} onSimilar={() => {}} />, { client: fakeClient({}, calls) });
    expect(screen.queryByRole("button", { name: "Cancel" })).toBeNull();
    expect(screen.getByLabelText("Payload")).toHaveTextContent('"password": "***"');
    expect(screen.getByRole("table", { name: "Attempt history" })).toHaveTextContent("Timeout");
    await userEvent.click(screen.getByRole("button", { name: "Retry" }));
    expect(calls.mutations).toEqual([{ id: base.id }]);
  });
  it("shows the retry advisor's decision and its reason on the attempt", () => {
    renderWith(<JobDetails job={base} onSimilar={() => {}} />);
    const table = screen.getByRole("table", { name: "Attempt history" });
    expect(within(table).getByRole("columnheader", { name: "Retry decision" })).toBeInTheDocument();
    expect(table).toHaveTextContent("retry in 45.0 s · 91% success");
    expect(table).toHaveTextContent("19 of 21 retries succeeded after waiting ~45 s");
  });
  it("offers Cancel for a pending job, not Retry", () => {
    renderWith(<JobDetails job={{ ...base, status: "PENDING", attemptHistory: [] }} onSimilar={() => {}} />);
    expect(screen.getByRole("button", { name: "Cancel" })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Retry" })).toBeNull();
    expect(screen.getByText("No attempt yet.")).toBeInTheDocument();
  });
});

describe("JobDetails progress and logs", () => {
  it("shows the stored progress bar, message and log lines", () => {
    renderWith(<JobDetails job={{ ...base, status: "COMPLETED", progress }} onSimilar={() => {}} />);
    expect(screen.getByRole("progressbar", { name: "Job progress" })).toHaveAttribute("aria-valuenow", "40");
    expect(screen.getByText("resizing")).toBeInTheDocument();
    const log = screen.getByLabelText("Job log");
    expect(log).toHaveTextContent("opened image.png");
    expect(log).toHaveTextContent("token=***");
    expect(log).toHaveTextContent("3 earlier lines not kept");
  });
  it("follows jobProgress live while the job runs", async () => {
    const next = { ...progress, fraction: 0.8, message: "almost", updatedAt: "2026-01-01T00:00:09Z",
      logs: [...progress.logs, { time: "2026-01-01T00:00:09Z", message: "wrote thumbnail" }] };
    renderWith(<JobDetails job={{ ...base, status: "PROCESSING", progress }} onSimilar={() => {}} />,
      { client: liveClient([{ jobProgress: next }]) });
    expect(await screen.findByText("almost")).toBeInTheDocument();
    expect(screen.getByRole("progressbar", { name: "Job progress" })).toHaveAttribute("aria-valuenow", "80");
    expect(screen.getByLabelText("Job log")).toHaveTextContent("wrote thumbnail");
  });
  it("does not subscribe for a finished job and says when the result expired", () => {
    const calls: unknown[] = [];
    const client = fakeClient({});
    (client as unknown as { subscription: unknown }).subscription = (...a: unknown[]) => {
      calls.push(a);
      return { subscribe: () => ({ unsubscribe: () => {} }) };
    };
    renderWith(<JobDetails job={{ ...base, status: "COMPLETED", resultExpired: true }} onSimilar={() => {}} />, { client });
    expect(calls).toEqual([]);
    expect(screen.getByText(/Result expired/)).toBeInTheDocument();
    expect(screen.queryByRole("progressbar")).toBeNull();
  });
});

describe("dependency layout", () => {
  it("puts each job one column right of its deepest dependency", () => {
    const pos = layout([{ id: "a" }, { id: "b" }, { id: "c" }],
      [{ dependency: "a", dependent: "b" }, { dependency: "b", dependent: "c" }, { dependency: "a", dependent: "c" }]);
    expect(pos.get("a")!.x).toBe(0);
    expect(pos.get("b")!.x).toBe(220);
    expect(pos.get("c")!.x).toBe(440);
  });
});

describe("JobsPage live", () => {
  it("applies a server batch of events to the visible rows in one render", async () => {
    const { JobsPage } = await import("./JobsPage");
    const { act } = await import("@testing-library/react");
    const frames: FrameRequestCallback[] = [];
    vi.stubGlobal("requestAnimationFrame", (cb: FrameRequestCallback) => frames.push(cb));
    const node = (id: string) => ({ id, queue: "q", jobType: "t", status: "PROCESSING", attempts: 1, maxAttempts: 3,
      createdAt: "2026-01-01T00:00:00Z", completedAt: null, errorType: null, error: null });
    const ids = ["0193a1b2-0000-7000-8000-00000000000a", "0193a1b2-0000-7000-8000-00000000000b"];
    let push: ((r: unknown) => void) | null = null;
    const client = {
      ...fakeClient({ jobs: { edges: ids.map((id) => ({ cursor: id, node: node(id) })), pageInfo: { hasNextPage: false, endCursor: null } } }),
      subscription: () => ({ subscribe: (cb: (r: unknown) => void) => { push = cb; return { unsubscribe: () => {} }; } }),
    } as unknown as Client;
    renderWith(<JobsPage />, { client, path: "/jobs" });
    const statuses = () => [...document.querySelectorAll("tr[data-job-id] [data-status]")].map((e) => (e as HTMLElement).dataset.status);
    expect(statuses()).toEqual(["PROCESSING", "PROCESSING"]);
    const ev = (jobId: string, type: string) => ({ id: jobId + type, type, time: "", jobId, queue: "q", jobType: "t", errorType: null, data: {} });
    const renders = vi.fn();
    const observer = new MutationObserver(renders);
    observer.observe(document.body, { subtree: true, attributes: true, attributeFilter: ["data-status"] });
    await act(async () => {
      push!({ data: { jobEventBatches: { events: [ev(ids[0], "jobs.completed"), ev(ids[1], "jobs.dead_letter")] } } });
    });
    // an idle page applies the batch at once (no frame to wait for), both rows in one commit
    expect(frames).toHaveLength(0);
    expect(statuses()).toEqual(["COMPLETED", "DEAD_LETTER"]);
    await Promise.resolve();
    expect(renders).toHaveBeenCalledTimes(1);
    observer.disconnect();
    vi.unstubAllGlobals();
  });
});
