import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { fakeClient, renderWith } from "../test/render";
import { RootCauses } from "./RootCauses";

const groups = [
  {
    groupId: "0123456789abcdef", template: "timed out after <NUM> ms waiting for <URL>", count: 7,
    jobTypes: ["encode"], queues: ["media"], errorTypes: ["TimeoutError"], retryable: true,
    evidence: "12 of 19 jobs that failed with TimeoutError in the last 7 days succeeded on a later attempt (63%)",
    suggestion: "Retry this group", lastSeen: "2026-12-06T10:00:00Z",
  },
  {
    groupId: "fedcba9876543210", template: "invalid email address <STR> for user <NUM>", count: 5,
    jobTypes: ["notify"], queues: ["media"], errorTypes: ["ValidationError"], retryable: false,
    evidence: "too little history", suggestion: "Fix the cause in notify", lastSeen: "2026-12-06T10:00:00Z",
  },
];

describe("RootCauses", () => {
  it("lists groups with their evidence and retries exactly the chosen group", async () => {
    const calls = { mutations: [] as unknown[] };
    const client = fakeClient({ dlqInsights: { analyzed: 12, complete: true, groups } }, calls);
    let told = "";
    renderWith(<RootCauses queue="media" jobType={null} onRetried={(m) => (told = m)} />, { client });
    const table = screen.getByRole("table", { name: "Root-cause groups" });
    const rows = within(table).getAllByRole("row").slice(1);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toHaveTextContent("timed out after <NUM> ms waiting for <URL>");
    expect(within(rows[0]).getByText("likely")).toBeInTheDocument();
    expect(rows[0]).toHaveTextContent(groups[0].evidence);
    expect(within(rows[1]).getByText("unlikely")).toBeInTheDocument();
    expect(screen.getByText("All 12 dead letters grouped")).toBeInTheDocument();
    await userEvent.click(within(rows[1]).getByRole("button", { name: /Retry group: 5 jobs of invalid email/ }));
    await userEvent.click(await screen.findByRole("button", { name: "Retry 5 jobs" }));
    expect(calls.mutations).toEqual([{ groupId: "fedcba9876543210", queue: "media", jobType: null }]);
    expect(told).toMatch(/^Retried/);
  });
  it("says so when there is nothing to group", () => {
    renderWith(<RootCauses queue={null} jobType={null} onRetried={() => {}} />, { data: { dlqInsights: { analyzed: 0, complete: true, groups: [] } } });
    expect(screen.getByText("No dead letters to group.")).toBeInTheDocument();
  });
});
