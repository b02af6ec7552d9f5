import { useMemo } from "react";
import { Paper, SimpleGrid, Text, Title, useComputedColorScheme } from "@mantine/core";
import { useQuery } from "urql";
import { graphql } from "../gql";
import { ErrorNote } from "../ui/Errors";
import { Page } from "../ui/Page";
import { EChart } from "./EChart";
import { powerOfTwoBins } from "./bins";

const ChartsQuery = graphql(`
  query Charts($from: DateTime!, $weekFrom: DateTime!) {
    queueMetrics { name }
    week: throughputSeries(from: $weekFrom) { minuteMs submitted }
    durationHistogram(from: $weekFrom) { total p50Ms p95Ms p99Ms buckets { lowerMs upperMs count } }
    recent: throughputSeries(from: $from) { minuteMs completed failed }
  }
`);

const QueueSeries = graphql(`
  query QueueSeries($queue: String!, $from: DateTime!) {
    throughputSeries(queue: $queue, from: $from) { minuteMs completed failed }
  }
`);

const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/** Submissions by local weekday × hour, from per-minute rollups. */
export function heatmapCells(points: { minuteMs: number; submitted: number }[]): [number, number, number][] {
  const grid = new Map<string, number>();
  for (const p of points) {
    const d = new Date(p.minuteMs);
    const day = (d.getDay() + 6) % 7;
    const k = `${d.getHours()}:${day}`;
    grid.set(k, (grid.get(k) ?? 0) + p.submitted);
  }
  const out: [number, number, number][] = [];
  for (let h = 0; h < 24; h++) for (let d = 0; d < 7; d++) out.push([h, d, grid.get(`${h}:${d}`) ?? 0]);
  return out;
}

function QueueLines({ queues, from }: { queues: string[]; from: string }) {
  // One small rollup read per queue (the series API sums across queues otherwise).
  const results = queues.slice(0, 12).map((q) => ({ q, r: useQuery({ query: QueueSeries, variables: { queue: q, from } })[0] }));
  const option = useMemo(() => ({
    tooltip: { trigger: "axis" },
    legend: { type: "scroll", top: 0 },
    grid: { left: 48, right: 16, top: 48, bottom: 32 },
    xAxis: { type: "time", min: new Date(from).getTime(), max: Date.now() },
    yAxis: { type: "value", name: "completed/min", nameGap: 12 },
    series: results.map(({ q, r }) => ({
      name: q, type: "line", showSymbol: (r.data?.throughputSeries.length ?? 0) < 30,
      data: (r.data?.throughputSeries ?? []).map((p) => [p.minuteMs, p.completed]),
    })),
  }), [results]);
  const bars = useMemo(() => ({
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 48, right: 16, top: 48, bottom: 32 },
    xAxis: { type: "category", data: results.map((x) => x.q) },
    yAxis: { type: "value" },
    series: [
      { name: "completed", type: "bar", stack: "s", color: "#2f9e44", data: results.map((x) => (x.r.data?.throughputSeries ?? []).reduce((a, p) => a + p.completed, 0)) },
      { name: "failed", type: "bar", stack: "s", color: "#e03131", data: results.map((x) => (x.r.data?.throughputSeries ?? []).reduce((a, p) => a + p.failed, 0)) },
    ],
  }), [results, from]);
  return (
    <>
      <Paper withBorder p="sm">
        <Title order={2} size="h4">Jobs processed over time by queue (last 6 h)</Title>
        <EChart option={option} label="Line chart: jobs completed per minute by queue" />
      </Paper>
      <Paper withBorder p="sm">
        <Title order={2} size="h4">Success vs failure by queue (last 6 h)</Title>
        <EChart option={bars} label="Bar chart: completed and failed attempts by queue" />
      </Paper>
    </>
  );
}

export default function ChartsPage() {
  const vars = useMemo(() => {
    const now = Date.now();
    return { from: new Date(now - 6 * 3600_000).toISOString(), weekFrom: new Date(now - 7 * 86400_000 + 60_000).toISOString() };
  }, []);
  const [{ data, error }] = useQuery({ query: ChartsQuery, variables: vars });
  const scheme = useComputedColorScheme("light");
  const heat = useMemo(() => {
    const cells = heatmapCells(data?.week ?? []);
    const max = Math.max(1, ...cells.map((c) => c[2]));
    return {
      tooltip: { position: "top" },
      grid: { left: 48, right: 72, top: 16, bottom: 32 },
      xAxis: { type: "category", data: Array.from({ length: 24 }, (_, h) => `${h}h`), splitArea: { show: true } },
      yAxis: { type: "category", data: DAYS, inverse: true, splitArea: { show: true } },
      visualMap: { min: 0, max, calculable: true, orient: "vertical", right: 0, top: "middle", inRange: { color: scheme === "dark" ? ["#25262b", "#4dabf7"] : ["#f1f8ff", "#1864ab"] } },
      series: [{ name: "submitted", type: "heatmap", data: cells }],
    };
  }, [data, scheme]);
  const hist = useMemo(() => {
    const b = powerOfTwoBins(data?.durationHistogram.buckets ?? []);
    const label = (ms: number) => (ms < 1000 ? `${ms} ms` : `${ms / 1000} s`);
    return {
      tooltip: { trigger: "axis" },
      grid: { left: 48, right: 16, top: 32, bottom: 56 },
      xAxis: { type: "category", data: b.map((x) => `${label(x.lowerMs)}–${label(x.upperMs)}`), axisLabel: { rotate: 30 } },
      yAxis: { type: "value", name: "jobs" },
      series: [{ type: "bar", data: b.map((x) => x.count), color: "#1971c2" }],
    };
  }, [data]);
  const queues = data?.queueMetrics.map((q) => q.name) ?? [];
  const h = data?.durationHistogram;
  return (
    <Page title="Charts">
      <ErrorNote error={error} />
      <SimpleGrid cols={{ base: 1, lg: 2 }}>
        {queues.length > 0 && <QueueLines key={queues.join(",")} queues={queues} from={vars.from} />}
        <Paper withBorder p="sm">
          <Title order={2} size="h4">Submissions by hour of day × weekday (last 7 days)</Title>
          <EChart option={heat} label="Heatmap: jobs submitted by hour of day and weekday" />
        </Paper>
        <Paper withBorder p="sm">
          <Title order={2} size="h4">Duration distribution (last 7 days)</Title>
          <Text size="sm" c="dimmed">
            {h ? `${h.total.toLocaleString()} jobs · p50 ${h.p50Ms ?? "—"} ms · p95 ${h.p95Ms ?? "—"} ms · p99 ${h.p99Ms ?? "—"} ms` : "…"}
          </Text>
          <EChart option={hist} label="Histogram: job durations" />
        </Paper>
      </SimpleGrid>
    </Page>
  );
}
