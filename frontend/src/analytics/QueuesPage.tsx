import { useMemo } from "react";
import { Anchor, MultiSelect, Paper, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { Link } from "react-router";
import { useQuery } from "urql";
import { powerOfTwoBins } from "../charts/bins";
import { QueuesDeepDiveQuery } from "./documents";
import type { AnalyticsQueuesQuery } from "./gql/graphql";
import { variablesOf, withParams } from "./range";
import {
  AnalyticsFrame, barOption, ChartFigure, COLORS, DataTable, Figure, fmtAt, fmtCount, fmtDuration, fmtPct, lineOption, toPoints, useDataMark, useView,
} from "./ui";

type Health = AnalyticsQueuesQuery["all"]["queuesHealth"][number];

/** "~4.2 min" for a draining backlog, "not draining" when the API has no estimate, "empty" with no backlog. */
export function clearLabel(h: Pick<Health, "estimatedClearMs" | "currentDepth">): string {
  if (!h.currentDepth) return "no backlog";
  return h.estimatedClearMs === null || h.estimatedClearMs === undefined ? "not draining" : `~${fmtDuration(h.estimatedClearMs)}`;
}

/** Queues drawn together: the ones in the URL (compare=a,b), else the five deepest now. */
export function compared(all: Health[], param: string | null): string[] {
  const names = new Set(all.map((h) => h.queue));
  if (param) return param.split(",").filter((q) => names.has(q));
  return [...all].sort((a, b) => (b.currentDepth ?? 0) - (a.currentDepth ?? 0)).slice(0, 5).map((h) => h.queue);
}

/** Queue deep dive: every queue side by side, one queue's health over time, its job types. */
export default function QueuesPage() {
  const [view, params, update] = useView();
  const [{ data, fetching, error }] = useQuery({ query: QueuesDeepDiveQuery, variables: variablesOf(view), pause: !!view.invalid });
  const all = data?.all.queuesHealth ?? [];
  const d = data?.selected.durations;
  const empty = !!data && all.length === 0 && (d?.count ?? 0) === 0;
  useDataMark("queues", !!data);
  const picked = view.queue ? all.find((h) => h.queue === view.queue) : undefined;
  const compare = useMemo(() => compared(all, params.get("compare")), [all, params]);
  const link = (changes: Record<string, string | null>) => `?${withParams(params, changes).toString()}`;
  const depthChart = useMemo(() => lineOption(
    all.filter((h) => compare.includes(h.queue)).map((h) => ({ name: h.queue, data: toPoints(h.depth) })), "jobs", fmtCount,
  ), [all, compare]);
  const ageChart = useMemo(() => lineOption(
    all.filter((h) => compare.includes(h.queue)).map((h) => ({ name: h.queue, data: toPoints(h.oldestPendingAgeMs) })), "age", fmtDuration,
  ), [all, compare]);
  const hist = useMemo(() => {
    const bins = powerOfTwoBins(d?.histogram ?? []);
    return { bins, option: barOption(bins.map((b) => `${fmtDuration(b.lowerMs)}–${fmtDuration(b.upperMs)}`), [{ name: "jobs", data: bins.map((b) => b.count), color: COLORS.info }], "jobs") };
  }, [d]);
  return (
    <AnalyticsFrame title="Queue deep dive" view={view} update={update} fetching={fetching && !data} error={error} empty={empty}>
      {data && (
        <Stack>
          <Paper withBorder p="sm" component="section" aria-labelledby="compare-queues">
            <Title order={2} size="h4" id="compare-queues">Queues side by side</Title>
            <Text size="sm" c="dimmed" mb="xs">Now, and throughput over the range. Pick a queue to drill down.</Text>
            <DataTable<Health>
              caption="Queues side by side" hideCaption rows={all} rowKey={(h) => h.queue} empty="No queue reported samples in this range."
              columns={[
                { label: "Queue", value: (h) => <Anchor component={Link} to={link({ queue: h.queue, jobType: null })} aria-current={h.queue === view.queue ? "true" : undefined} fw={h.queue === view.queue ? 700 : 500}>{h.queue}</Anchor> },
                { label: "Depth now", value: (h) => fmtCount(h.currentDepth), numeric: true },
                { label: "Oldest pending", value: (h) => fmtDuration(h.currentOldestPendingAgeMs), numeric: true },
                { label: "Throughput / min", value: (h) => h.throughputPerMinute.toFixed(1), numeric: true },
                { label: "Utilization", value: (h) => fmtPct(h.utilization, 0), numeric: true },
                { label: "Time to clear", value: (h) => clearLabel(h), numeric: true },
              ]}
            />
          </Paper>
          {all.length > 0 && (
            <>
              <MultiSelect
                label="Compare queues" data={all.map((h) => h.queue)} value={compare} maxValues={8} searchable clearable
                onChange={(v) => update({ compare: v.join(",") || null })} description="the five deepest by default"
              />
              <SimpleGrid cols={{ base: 1, lg: 2 }}>
                <ChartFigure title="Queue depth" label={`Line chart: pending jobs over time for ${compare.join(", ")}`} option={depthChart}
                  table={{ rows: all.filter((h) => compare.includes(h.queue)), rowKey: (h) => h.queue, columns: [
                    { label: "Queue", value: (h) => h.queue },
                    { label: "Samples", value: (h) => fmtCount(h.depth.length), numeric: true },
                    { label: "Max depth", value: (h) => fmtCount(Math.max(0, ...h.depth.map((p) => p.value))), numeric: true },
                    { label: "Depth now", value: (h) => fmtCount(h.currentDepth), numeric: true },
                  ] }} />
                <ChartFigure title="Oldest pending job's age" label={`Line chart: age of the oldest pending job over time for ${compare.join(", ")}`} option={ageChart}
                  table={{ rows: all.filter((h) => compare.includes(h.queue)), rowKey: (h) => h.queue, columns: [
                    { label: "Queue", value: (h) => h.queue },
                    { label: "Max age", value: (h) => fmtDuration(Math.max(0, ...h.oldestPendingAgeMs.map((p) => p.value))), numeric: true },
                    { label: "Age now", value: (h) => fmtDuration(h.currentOldestPendingAgeMs), numeric: true },
                  ] }} />
              </SimpleGrid>
            </>
          )}
          {picked && (
            <Paper withBorder p="sm" component="section" aria-labelledby="picked-queue">
              <Title order={2} size="h4" id="picked-queue">Queue {picked.queue}</Title>
              <SimpleGrid cols={{ base: 2, md: 5 }} mt="xs">
                <Figure label="Depth now" value={fmtCount(picked.currentDepth)} />
                <Figure label="Oldest pending" value={fmtDuration(picked.currentOldestPendingAgeMs)} />
                <Figure label="Throughput" value={`${picked.throughputPerMinute.toFixed(1)}/min`} />
                <Figure label="Utilization" value={fmtPct(picked.utilization, 0)} hint="busy / available worker time" />
                <Figure label="Estimated time to clear" value={clearLabel(picked)} />
              </SimpleGrid>
            </Paper>
          )}
          {d && (
            <Paper withBorder p="sm" component="section" aria-labelledby="job-types">
              <Title order={2} size="h4" id="job-types">Durations by job type{view.queue ? ` in ${view.queue}` : ""}</Title>
              <Text size="sm" c="dimmed" mb="xs">
                {fmtCount(d.count)} completed · p50 {fmtDuration(d.p50Ms)} · p95 {fmtDuration(d.p95Ms)} · p99 {fmtDuration(d.p99Ms)}
              </Text>
              <DataTable
                caption="Durations by job type" hideCaption rows={d.byJobType} rowKey={(r) => `${r.queue}/${r.jobType}`} empty="No completed job in this range."
                columns={[
                  { label: "Job type", value: (r) => <Anchor component={Link} to={link({ queue: r.queue, jobType: r.jobType })} aria-current={r.jobType === view.jobType ? "true" : undefined}>{r.jobType}</Anchor> },
                  { label: "Queue", value: (r) => r.queue },
                  { label: "Completed", value: (r) => fmtCount(r.count), numeric: true },
                  { label: "Average", value: (r) => fmtDuration(r.avgMs), numeric: true },
                  { label: "p50", value: (r) => fmtDuration(r.p50Ms), numeric: true },
                  { label: "p95", value: (r) => fmtDuration(r.p95Ms), numeric: true },
                  { label: "p99", value: (r) => fmtDuration(r.p99Ms), numeric: true },
                ]}
              />
            </Paper>
          )}
          {d && (view.queue || view.jobType) && (
            <ChartFigure title={`Duration distribution${view.jobType ? ` of ${view.jobType}` : ""}`} label="Histogram: completed attempts by run time" option={hist.option}
              empty={hist.bins.length === 0 ? "No completed job in this range." : null}
              table={{ rows: hist.bins, rowKey: (b) => String(b.lowerMs), columns: [
                { label: "Run time", value: (b) => `${fmtDuration(b.lowerMs)}–${fmtDuration(b.upperMs)}` },
                { label: "Jobs", value: (b) => fmtCount(b.count), numeric: true },
              ] }} />
          )}
          <Text size="xs" c="dimmed">Samples from {fmtAt(view.from)} to {fmtAt(view.to)}.</Text>
        </Stack>
      )}
    </AnalyticsFrame>
  );
}
