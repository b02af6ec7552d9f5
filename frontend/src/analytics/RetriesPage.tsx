import { useMemo } from "react";
import { SimpleGrid, Stack } from "@mantine/core";
import { useQuery } from "urql";
import { RetriesQuery } from "./documents";
import { variablesOf } from "./range";
import { AnalyticsFrame, barOption, ChartFigure, COLORS, DataTable, Figure, fmtCount, fmtDuration, fmtPct, useDataMark, useView } from "./ui";

/** Compute seconds as a readable duration ("3.2 h"). */
export const fmtSeconds = (s: number | null | undefined) => (s === null || s === undefined ? "—" : fmtDuration(s * 1000));

/** Retries: how often each type retries, whether later attempts still succeed, what failed attempts cost. */
export default function RetriesPage() {
  const [view, , update] = useView();
  const [{ data, fetching, error }] = useQuery({ query: RetriesQuery, variables: variablesOf(view), pause: !!view.invalid });
  const r = data?.analytics.retries;
  const empty = !!r && r.byJobType.length === 0 && r.byAttempt.length === 0;
  useDataMark("retries", !!r);
  const byType = useMemo(() => [...(r?.byJobType ?? [])].sort((a, b) => (b.avgRetries ?? 0) - (a.avgRetries ?? 0)), [r]);
  const totals = useMemo(() => ({
    jobs: byType.reduce((s, t) => s + t.jobs, 0),
    retries: byType.reduce((s, t) => s + t.retries, 0),
  }), [byType]);
  const avg = useMemo(() => barOption(byType.slice(0, 15).map((t) => t.jobType), [{ name: "average retries per job", data: byType.slice(0, 15).map((t) => t.avgRetries), color: COLORS.warn }],
    "retries / job", { horizontal: true, yFormat: (v) => v.toFixed(2) }), [byType]);
  const attempts = useMemo(() => barOption((r?.byAttempt ?? []).map((x) => `attempt ${x.attempt}`),
    [{ name: "success rate", data: (r?.byAttempt ?? []).map((x) => x.successRate), color: COLORS.ok }], "success rate", { yFormat: (v) => fmtPct(v, 0) }), [r]);
  return (
    <AnalyticsFrame title="Retries" view={view} update={update} fetching={fetching && !data} error={error} empty={empty}
      emptyText="No attempt finished in this range.">
      {r && (
        <Stack>
          <SimpleGrid cols={{ base: 1, sm: 3 }}>
            <Figure label="Wasted compute" value={fmtSeconds(r.wastedComputeSeconds)} hint="run time of attempts that failed" />
            <Figure label="Retries" value={fmtCount(totals.retries)} hint={`over ${fmtCount(totals.jobs)} jobs`} />
            <Figure label="Average retries per job" value={totals.jobs ? (totals.retries / totals.jobs).toFixed(2) : "—"} />
          </SimpleGrid>
          <SimpleGrid cols={{ base: 1, lg: 2 }}>
            <ChartFigure title="Average retries per job type" label="Bar chart: average retries per job, by job type" option={avg}
              empty={byType.length === 0 ? "No job ran in this range." : null} />
            <ChartFigure title="Success rate by attempt number" label="Bar chart: share of attempts that completed, by attempt number" option={attempts}
              empty={r.byAttempt.length === 0 ? "No attempt finished in this range." : null}
              table={{ rows: r.byAttempt, rowKey: (x) => String(x.attempt), columns: [
                { label: "Attempt", value: (x) => String(x.attempt) },
                { label: "Completed", value: (x) => fmtCount(x.completed), numeric: true },
                { label: "Failed", value: (x) => fmtCount(x.failed), numeric: true },
                { label: "Success rate", value: (x) => fmtPct(x.successRate), numeric: true },
              ] }} />
          </SimpleGrid>
          <DataTable
            caption="Retries by job type" rows={byType} rowKey={(t) => `${t.queue}/${t.jobType}`}
            columns={[
              { label: "Job type", value: (t) => t.jobType },
              { label: "Queue", value: (t) => t.queue },
              { label: "Jobs", value: (t) => fmtCount(t.jobs), numeric: true },
              { label: "Retries", value: (t) => fmtCount(t.retries), numeric: true },
              { label: "Average retries", value: (t) => (t.avgRetries === null || t.avgRetries === undefined ? "—" : t.avgRetries.toFixed(2)), numeric: true },
              { label: "Wasted compute", value: (t) => fmtSeconds(t.wastedComputeSeconds), numeric: true },
            ]}
          />
        </Stack>
      )}
    </AnalyticsFrame>
  );
}
