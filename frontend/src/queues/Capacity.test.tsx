import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { CombinedError, type Client } from "urql";
import { concat, fromValue, never } from "wonka";
import { renderWith } from "../test/render";
import { CapacityView, forecastOption } from "./Capacity";
import { QueuesPage } from "./QueuesPage";

// The canvas is ECharts' business; the option it gets is checked below.
vi.mock("../charts/EChart", () => ({
  EChart: ({ label }: { label: string }) => <div role="img" aria-label={label} />,
}));

const forecast = {
  queue: "reports", horizonDays: 7, model: "prophet", capacityModel: "seasonalNaive", historyHours: 504,
  backtest: { holdoutHours: 126, seasonHours: 168, maseProphet: 0.912, maseSeasonalNaive: 0.734 },
  points: Array.from({ length: 7 * 24 }, (_, h) => ({
    at: new Date(Date.UTC(2026, 1, 1, h)).toISOString(), jobs: 50 + (h % 24), lower: 40 + (h % 24), upper: 62 + (h % 24),
  })),
  days: Array.from({ length: 7 }, (_, d) => ({
    date: `2026-02-0${d + 1}`, jobs: 1400 + d, lower: 1200, upper: 1600, peakJobsPerHour: 96.5,
    workersNeeded: 3 + (d % 2), busyWorkerHours: 0.156, cost: 0.0156,
  })),
  meanDurationMs: 400, waitTargetMs: 120000, targetSource: "SLA 95% within 120,000 ms (wait)", pricePerWorkerHour: 0.1, totalCost: 0.1092,
};

const recommendation = {
  queue: "reports", suggestedWorkers: 4, expectedWaitMs: 850, currentWorkers: 2, suggestedProcesses: null, slotsPerProcess: null,
  reasoning: ["arrivals 1.50/min measured over the last hour", "4 workers keep 95% of waits under 30 s (M/M/c)"],
  inputs: {
    arrivalsPerMinute: 1.5, arrivalsSource: "measured", averageJobDurationMs: 400, durationSource: "given",
    pendingJobs: 12, pendingSource: "measured", targetLatencyMs: 30000, serviceLevel: 0.95,
  },
};

type Answer = { data?: Record<string, unknown>; error?: CombinedError };

/** Answers each query by its operation name and records the variables it was asked with. */
function client(answers: Record<string, Answer>, asked: { name: string; variables: unknown }[]): Client {
  return {
    executeQuery: (op: { query: { definitions: { name?: { value: string } }[] }; variables: unknown }) => {
      const name = op.query.definitions[0]?.name?.value ?? "";
      asked.push({ name, variables: op.variables });
      // stays open like a real client's stream: urql drops an error when its source ends
      return concat([fromValue({ ...(answers[name] ?? { data: {} }), stale: false, hasNext: false }), never]);
    },
    executeSubscription: () => never,
    subscription: () => ({ subscribe: () => ({ unsubscribe: () => {} }) }),
    executeMutation: () => never,
  } as unknown as Client;
}

describe("Capacity view", () => {
  it("shows the forecast, its backtest, workers and cost per day, and asks for scaling advice", async () => {
    const asked: { name: string; variables: unknown }[] = [];
    renderWith(<CapacityView queue="reports" />, {
      client: client({ QueueForecast: { data: { forecast } }, ScalingRecommendation: { data: { scalingRecommendation: recommendation } } }, asked),
    });
    expect(screen.getByRole("img", { name: /Forecast of hourly submissions to reports for the next 7 days/ })).toBeInTheDocument();
    const backtest = screen.getByRole("table", { name: "Forecast backtest" });
    const [prophet, naive] = within(backtest).getAllByRole("row").slice(1);
    expect(prophet).toHaveTextContent("Prophet0.912not used");
    expect(naive).toHaveTextContent("seasonal naive0.734used");
    const days = within(screen.getByRole("table", { name: "Workers needed per day" })).getAllByRole("row").slice(1);
    expect(days).toHaveLength(7);
    expect(days[1]).toHaveTextContent("2026-02-02");
    expect(days[1]).toHaveTextContent("1,401");
    expect(within(days[1]).getAllByRole("cell")[3]).toHaveTextContent("4");
    expect(screen.getByLabelText("Cost projection")).toHaveTextContent("$0.109 over 7 days");

    // 30 days asks again with the other horizon
    await userEvent.click(screen.getByRole("radio", { name: "30 days" }));
    expect(asked.filter((a) => a.name === "QueueForecast").map((a) => a.variables)).toEqual([
      { queue: "reports", horizonDays: 7 }, { queue: "reports", horizonDays: 30 },
    ]);

    const form = screen.getByRole("form", { name: "Scaling advice for reports" });
    await userEvent.clear(within(form).getByLabelText(/Target latency/));
    await userEvent.type(within(form).getByLabelText(/Target latency/), "30000");
    await userEvent.type(within(form).getByLabelText(/Avg duration/), "400");
    expect(asked.some((a) => a.name === "ScalingRecommendation")).toBe(false); // nothing before the click
    await userEvent.click(within(form).getByRole("button", { name: "Get scaling advice" }));
    expect(asked.filter((a) => a.name === "ScalingRecommendation").map((a) => a.variables)).toEqual([
      { queue: "reports", targetLatencyMs: 30000, pendingJobs: null, averageJobDurationMs: 400, currentWorkers: null },
    ]);
    const status = screen.getByRole("status", { name: "Scaling recommendation" });
    expect(within(status).getByTestId("suggested-workers")).toHaveTextContent("4");
    expect(status).toHaveTextContent("850 ms");
    expect(status).toHaveTextContent("4 workers keep 95% of waits under 30 s (M/M/c)");
  });

  it("says why there is no forecast or advice instead of failing", async () => {
    const noHistory = new CombinedError({
      graphQLErrors: [{ message: "10 hours of history for 'tiny'; at least 72 are needed", extensions: { code: "BAD_USER_INPUT", field: "queue" } }],
    });
    const noExtra = new CombinedError({
      graphQLErrors: [{ message: "prophet is not installed in this deployment: pip install 'jobline[ai]'", extensions: { code: "UNAVAILABLE" } }],
    });
    renderWith(<CapacityView queue="tiny" />, {
      client: client({ QueueForecast: { error: noHistory }, ScalingRecommendation: { error: noExtra } }, []),
    });
    const [first] = screen.getAllByRole("alert");
    expect(first).toHaveTextContent("Cannot compute this");
    expect(first).toHaveTextContent("at least 72 are needed");
    expect(screen.queryByRole("table", { name: "Workers needed per day" })).toBeNull();
    await userEvent.click(screen.getByRole("button", { name: "Get scaling advice" }));
    const status = screen.getByRole("status", { name: "Scaling recommendation" });
    expect(within(status).getByRole("alert")).toHaveTextContent("AI features unavailable");
    expect(status).toHaveTextContent("pip install 'jobline[ai]'");
  });

  it("draws the interval as a band stacked on the lower bound", () => {
    const o = forecastOption(forecast) as { series: { name: string; stack?: string; data: number[] }[] };
    const [lower, band, line] = o.series;
    expect(lower.stack).toBe("band");
    expect(band.stack).toBe("band");
    expect(lower.data[5] + band.data[5]).toBe(forecast.points[5].upper);
    expect(line.data[5]).toBe(forecast.points[5].jobs);
  });
});

const page: Record<string, Answer> = {
  QueueMetrics: { data: { queueMetrics: [], workers: [] } }, QueueCounts: { data: { queues: [] } }, UnservedJobTypes: { data: { jobTypes: [] } },
};

describe("Queues page capacity route", () => {
  it("opens the capacity drawer of the queue in the URL for an admin", async () => {
    renderWith(<QueuesPage />, {
      path: "/queues/reports/capacity", route: "/queues/:queue/capacity",
      client: client({ ...page, QueueForecast: { data: { forecast } } }, []),
    });
    const drawer = await screen.findByRole("dialog", { name: "Capacity of reports" });
    expect(within(drawer).getByRole("table", { name: "Workers needed per day" })).toBeInTheDocument();
  });
  it("has no capacity drawer for a developer (the server refuses them)", () => {
    renderWith(<QueuesPage />, { role: "developer", path: "/queues/reports/capacity", route: "/queues/:queue/capacity", client: client(page, []) });
    expect(screen.queryByRole("dialog")).toBeNull();
  });
});
