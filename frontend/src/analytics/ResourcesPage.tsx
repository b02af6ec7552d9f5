import { useMemo } from "react";
import { SimpleGrid, Stack } from "@mantine/core";
import { useQuery } from "urql";
import { ResourcesQuery } from "./documents";
import { variablesOf } from "./range";
import {
  AnalyticsFrame, barOption, ChartFigure, COLORS, DataTable, Figure, fmtAt, fmtBytes, fmtCount, fmtPct, lineOption, toPoints, useDataMark, useView,
} from "./ui";

type Pt = { at: string; value: number };
const series = (pts: Pt[], fmt: (v: number) => string) => ({
  rows: pts, rowKey: (p: Pt) => p.at,
  columns: [{ label: "Time", value: (p: Pt) => fmtAt(p.at) }, { label: "Value", value: (p: Pt) => fmt(p.value), numeric: true }],
});

/** Resources: the fleet (workers, utilization, crashes, per-worker CPU/memory) and the stores
 * (Redis memory, PostgreSQL size by table, event lag). Not filtered by queue: these are shared. */
export default function ResourcesPage() {
  const [view, , update] = useView();
  const { from, to } = variablesOf(view);
  const [{ data, fetching, error }] = useQuery({ query: ResourcesQuery, variables: { from, to }, pause: !!view.invalid });
  const r = data?.analytics.resources;
  const empty = !!r && r.workerCount.length === 0 && r.redisMemoryBytes.length === 0 && r.postgresBytes.length === 0 && r.perWorker.length === 0 && r.tables.length === 0;
  useDataMark("resources", !!r);
  const charts = useMemo(() => ({
    workers: lineOption([{ name: "workers", data: toPoints(r?.workerCount ?? []), color: COLORS.info }], "workers", (v) => fmtCount(v)),
    util: lineOption([{ name: "utilization", data: toPoints(r?.utilization ?? []), color: COLORS.ok, area: true }], "busy", (v) => fmtPct(v, 0)),
    redis: lineOption([{ name: "Redis memory", data: toPoints(r?.redisMemoryBytes ?? []), color: COLORS.bad }], "memory", fmtBytes),
    pg: lineOption([{ name: "PostgreSQL", data: toPoints(r?.postgresBytes ?? []), color: COLORS.info }], "size", fmtBytes),
    lag: lineOption((r?.eventLag ?? []).map((s) => ({ name: s.subject, data: toPoints(s.points) })), "events behind", fmtCount),
    tables: barOption((r?.tables ?? []).slice(0, 12).map((t) => t.table), [{ name: "size", data: (r?.tables ?? []).slice(0, 12).map((t) => t.bytes), color: COLORS.info }],
      "size", { horizontal: true, yFormat: fmtBytes }),
  }), [r]);
  const none = (pts: unknown[]) => (pts.length === 0 ? "No samples in this range." : null);
  return (
    <AnalyticsFrame title="Resources" view={view} update={update} filters={false} fetching={fetching && !data} error={error} empty={empty}
      emptyText="The scheduler samples workers and stores once a minute; none were recorded in this range.">
      {r && (
        <Stack>
          <SimpleGrid cols={{ base: 2, md: 4 }}>
            <Figure label="Workers now" value={fmtCount(r.workerCount.at(-1)?.value)} />
            <Figure label="Idle time" value={fmtPct(r.idleRatio, 0)} hint="share of worker slots idle" />
            <Figure label="Crashes" value={fmtCount(r.crashes)} />
            <Figure label="Crash rate" value={r.crashRatePerHour === null || r.crashRatePerHour === undefined ? "—" : `${r.crashRatePerHour.toFixed(2)}/h`} />
          </SimpleGrid>
          <SimpleGrid cols={{ base: 1, lg: 2 }}>
            <ChartFigure title="Worker count" label="Line chart: live workers over time" option={charts.workers} empty={none(r.workerCount)} table={series(r.workerCount, fmtCount)} />
            <ChartFigure title="Worker utilization" label="Line chart: busy share of worker slots over time" option={charts.util} empty={none(r.utilization)} table={series(r.utilization, (v) => fmtPct(v, 0))} />
            <ChartFigure title="Redis memory" label="Line chart: Redis memory used over time" option={charts.redis} empty={none(r.redisMemoryBytes)} table={series(r.redisMemoryBytes, fmtBytes)} />
            <ChartFigure title="PostgreSQL size" label="Line chart: PostgreSQL database size over time" option={charts.pg} empty={none(r.postgresBytes)} table={series(r.postgresBytes, fmtBytes)} />
            <ChartFigure title="Event lag" label="Line chart: events behind per consumer over time" option={charts.lag} empty={r.eventLag.length === 0 ? "No event consumer reported lag." : null}
              table={{ rows: r.eventLag, rowKey: (s) => s.subject, columns: [
                { label: "Consumer", value: (s) => s.subject },
                { label: "Lag now", value: (s) => fmtCount(s.points.at(-1)?.value), numeric: true },
                { label: "Max lag", value: (s) => fmtCount(Math.max(0, ...s.points.map((p) => p.value))), numeric: true },
              ] }} />
            <ChartFigure title="PostgreSQL size per table" label="Bar chart: the largest PostgreSQL tables" option={charts.tables} empty={r.tables.length === 0 ? "No table sizes sampled." : null} />
          </SimpleGrid>
          <SimpleGrid cols={{ base: 1, lg: 2 }}>
            <DataTable caption="CPU and memory per worker" rows={r.perWorker} rowKey={(w) => w.workerId} empty="No worker sampled in this range."
              columns={[
                { label: "Worker", value: (w) => w.workerId },
                { label: "CPU", value: (w) => (w.cpuPct === null || w.cpuPct === undefined ? "—" : `${w.cpuPct.toFixed(0)}%`), numeric: true },
                { label: "Memory", value: (w) => fmtBytes(w.rssBytes), numeric: true },
              ]} />
            <DataTable caption="Table sizes" rows={r.tables} rowKey={(t) => t.table}
              columns={[{ label: "Table", value: (t) => t.table }, { label: "Size", value: (t) => fmtBytes(t.bytes), numeric: true }]} />
          </SimpleGrid>
        </Stack>
      )}
    </AnalyticsFrame>
  );
}
