import { screen, within, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { fakeClient, renderWith } from "../test/render";
import { Sparkline, WorkersPage } from "./WorkersPage";

const worker = {
  id: "h:imaging:a1", group: "imaging", state: "busy", quiet: false, command: null, inFlight: 1, version: "0.1.0",
  queues: ["img"], concurrency: 4, host: "h", pid: 7, status: "busy", running: 1, currentJobs: [],
  startedAt: null, lastSeenAt: null, uptimeMs: 1000, processed: 3, failed: 0, cpuPercent: 12, rssBytes: 64 * 1024 * 1024,
};
const group = {
  name: "imaging", desired: 2, actual: 1, draining: 0, busy: 1, capacity: 4, utilization: 0.25,
  autoscale: null, scaledAt: null, scaledReason: null, crashesLastHour: 3, history: [], crashes: [],
};

describe("Workers page actions", () => {
  it("scales a group with + and −, and acts on a worker", async () => {
    const calls = { mutations: [] as unknown[] };
    renderWith(<WorkersPage history={false} />, { client: fakeClient({ workers: [worker], workerGroups: [group] }, calls) });
    const card = screen.getByRole("region", { name: "Group imaging" });
    expect(within(card).getByLabelText("imaging workers")).toHaveTextContent("1 / 2");
    expect(card).toHaveTextContent("crashes last hour 3");
    await userEvent.click(within(card).getByRole("button", { name: "Add a worker to imaging" }));
    await userEvent.click(within(card).getByRole("button", { name: "Remove a worker from imaging" }));
    const row = screen.getByRole("row", { name: /h:imaging:a1/ });
    await userEvent.click(within(row).getByRole("button", { name: "Quiet h:imaging:a1" }));
    await userEvent.click(within(row).getByRole("button", { name: "Restart h:imaging:a1" }));
    await userEvent.click(within(row).getByRole("button", { name: "Stop h:imaging:a1" }));
    expect(calls.mutations).toEqual([
      { name: "imaging", step: 1 }, { name: "imaging", step: -1 },
      { id: "h:imaging:a1" }, { id: "h:imaging:a1" }, { id: "h:imaging:a1" },
    ]);
  }, 30_000);

  it("sends the autoscaling form's settings", async () => {
    const calls = { mutations: [] as unknown[] };
    renderWith(<WorkersPage history={false} />, { client: fakeClient({ workers: [], workerGroups: [group] }, calls) });
    await userEvent.click(screen.getByRole("button", { name: "Autoscaling…" }));
    const form = await screen.findByRole("form", { name: "Autoscaling of imaging" });
    await userEvent.click(within(form).getByRole("switch", { name: "Autoscaling on" }));
    const max = within(form).getByLabelText("Maximum workers");
    await userEvent.clear(max);
    await userEvent.type(max, "8");
    await userEvent.click(within(form).getByRole("button", { name: "Save autoscaling" }));
    await waitFor(() => expect(calls.mutations).toHaveLength(1));
    expect(calls.mutations[0]).toEqual({ name: "imaging", autoscale: {
      min: 1, max: 8, upCooldownS: 15, downCooldownS: 120, hysteresis: 0.2, targetBacklogPerWorker: 100, latencySlaMs: null } });
  }, 30_000);

  it("draws a sparkline once there are two samples", () => {
    const { unmount } = renderWith(<Sparkline values={[1]} label="CPU of w" />);
    expect(screen.queryByRole("img", { name: "CPU of w" })).toBeNull();
    unmount();
    renderWith(<Sparkline values={[1, 5, 3]} label="CPU of w" max={100} />);
    const svg = screen.getByRole("img", { name: "CPU of w" });
    expect(svg.querySelector("polyline")?.getAttribute("points")?.split(" ")).toHaveLength(3);
  });
});
