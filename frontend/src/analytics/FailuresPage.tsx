import { useMemo } from "react";
import { Anchor, SimpleGrid, Stack } from "@mantine/core";
import { Link } from "react-router";
import { useQuery } from "urql";
import { powerOfTwoBins } from "../charts/bins";
import { FailuresQuery } from "./documents";
import { intervalOf, variablesOf } from "./range";
import {
  AnalyticsFrame, barOption, ChartFigure, COLORS, DataTable, fmtAt, fmtCount, fmtDuration, fmtPct, lineOption, previousName, Stat, useDataMark, useView,
} from "./ui";

/** Failures: what breaks (error types), when (rate trend), where (job types), how fast (time to failure). */
export default function FailuresPage() {
  const [view, , update] = useView();
  const interval = intervalOf(view);
  const [{ data, fetching, error }] = useQuery({ query: FailuresQuery, variables: { ...variablesOf(view), interval }, pause: !!view.invalid });
  const a = data?.analytics;
  const f = a?.failures;
  const empty = !!f && f.errorTypes.length === 0 && f.topJobTypes.length === 0 && f.trend.every((p) => p.finished === 0);
  useDataMark("failures", !!a);
  const errors = useMemo(() => barOption((f?.errorTypes ?? []).map((e) => e.errorType), [{ name: "failed attempts", data: (f?.errorTypes ?? []).map((e) => e.count), color: COLORS.bad }], "attempts", { horizontal: true }), [f]);
  const trend = useMemo(() => lineOption([{ name: "failure rate", data: (f?.trend ?? []).map((p) => [Date.parse(p.at), p.rate ?? null]), color: COLORS.bad, area: true }],
    "rate", (v) => fmtPct(v, 1)), [f]);
  const ttf = useMemo(() => {
    const bins = powerOfTwoBins(f?.timeToFailure ?? []);
    return { bins, option: barOption(bins.map((b) => `${fmtDuration(b.lowerMs)}–${fmtDuration(b.upperMs)}`), [{ name: "failed attempts", data: bins.map((b) => b.count), color: COLORS.warn }], "attempts") };
  }, [f]);
  const prev = previousName(view);
  const jobTypeLink = (queue: string, jobType: string) => `/jobs?queue=${encodeURIComponent(queue)}&type=${encodeURIComponent(jobType)}&status=FAILED`;
  return (
    <AnalyticsFrame title="Failures" view={view} update={update} fetching={fetching && !data} error={error} empty={empty}
      emptyText="No attempt finished in this range.">
      {a && f && (
        <Stack>
          <SimpleGrid cols={{ base: 1, sm: 2, md: 4 }}>
            <Stat label="Failed attempts" trend={a.summary.failed} format={fmtCount} better="down" previous={prev} />
            <Stat label="Dead-lettered" trend={a.summary.deadLettered} format={fmtCount} better="down" previous={prev} />
          </SimpleGrid>
          <SimpleGrid cols={{ base: 1, lg: 2 }}>
            <ChartFigure title="Error types" label="Bar chart: failed attempts by error type" option={errors}
              empty={f.errorTypes.length === 0 ? "No failed attempt in this range." : null}
              table={{ rows: f.errorTypes, rowKey: (e) => e.errorType, columns: [
                { label: "Error type", value: (e) => e.errorType },
                { label: "Failed attempts", value: (e) => fmtCount(e.count), numeric: true },
                { label: "Share", value: (e) => fmtPct(e.share), numeric: true },
              ] }} />
            <ChartFigure title="Failure rate" label={`Line chart: failed attempts / finished attempts per ${interval}`} option={trend}
              empty={f.trend.length === 0 ? "No attempt finished in this range." : null}
              table={{ rows: f.trend, rowKey: (p) => p.at, columns: [
                { label: interval === "day" ? "Day" : "Time", value: (p) => fmtAt(p.at, interval) },
                { label: "Failed", value: (p) => fmtCount(p.failed), numeric: true },
                { label: "Finished", value: (p) => fmtCount(p.finished), numeric: true },
                { label: "Rate", value: (p) => fmtPct(p.rate), numeric: true },
              ] }} />
          </SimpleGrid>
          <DataTable
            caption="Job types with the highest failure rate" rows={f.topJobTypes} rowKey={(r) => `${r.queue}/${r.jobType}`}
            empty="No job type failed in this range."
            columns={[
              { label: "Job type", value: (r) => <Anchor component={Link} to={jobTypeLink(r.queue, r.jobType)} aria-label={`Failed ${r.jobType} jobs in ${r.queue}`}>{r.jobType}</Anchor> },
              { label: "Queue", value: (r) => r.queue },
              { label: "Failed attempts", value: (r) => fmtCount(r.failed), numeric: true },
              { label: "Finished attempts", value: (r) => fmtCount(r.finished), numeric: true },
              { label: "Failure rate", value: (r) => fmtPct(r.rate), numeric: true },
            ]}
          />
          <ChartFigure title="Time to failure" label="Histogram: how long failed attempts ran before failing" option={ttf.option}
            empty={ttf.bins.length === 0 ? "No failed attempt in this range." : null}
            table={{ rows: ttf.bins, rowKey: (b) => String(b.lowerMs), columns: [
              { label: "Ran for", value: (b) => `${fmtDuration(b.lowerMs)}–${fmtDuration(b.upperMs)}` },
              { label: "Failed attempts", value: (b) => fmtCount(b.count), numeric: true },
            ] }} />
        </Stack>
      )}
    </AnalyticsFrame>
  );
}
