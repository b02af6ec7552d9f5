import { useEffect, useMemo, useState, type FormEvent, type KeyboardEvent } from "react";
import { Button, Group, Paper, SegmentedControl, Text, TextInput } from "@mantine/core";
import { useElementSize } from "@mantine/hooks";
import { useNavigate, useSearchParams } from "react-router";
import { useClient } from "urql";
import { graphql } from "../gql";
import type { TimelineDensityQuery, TimelineQuery } from "../gql/graphql";
import { EChart } from "../charts/EChart";
import { ErrorNote } from "../ui/Errors";
import { Page } from "../ui/Page";

const TimelineDoc = graphql(`
  query Timeline($from: DateTime, $to: DateTime, $queue: String, $after: String) {
    jobTimeline(from: $from, to: $to, queue: $queue, first: 1000, after: $after) {
      items { id queue jobType status createdMs startMs endMs durationMs attempts workerId }
      nextCursor
    }
  }
`);

const DensityDoc = graphql(`
  query TimelineDensity($from: DateTime, $to: DateTime, $queue: String, $lanes: String!, $buckets: Int!) {
    jobTimelineDensity(from: $from, to: $to, queue: $queue, lanes: $lanes, buckets: $buckets) {
      fromMs toMs bucketMs
      cells { lane bucket jobs failed }
    }
  }
`);

type Item = TimelineQuery["jobTimeline"]["items"][number];
type Cell = TimelineDensityQuery["jobTimelineDensity"]["cells"][number];
/** Bars per pixel of plot width above which Auto shows the density view: past that, bars
 * overlap into a smear that says less than counts do. */
const BARS_PER_PX = 2;

/** Density cells as [lane, start, end, jobs, failed] rows, lanes in first-seen order. */
export function densityRows(cells: Cell[], fromMs: number, bucketMs: number) {
  const lanes: string[] = [];
  const index = new Map<string, number>();
  let max = 0;
  const rows = cells.map((c) => {
    if (!index.has(c.lane)) {
      index.set(c.lane, lanes.length);
      lanes.push(c.lane);
    }
    max = Math.max(max, c.jobs);
    const start = fromMs + c.bucket * bucketMs;
    return [index.get(c.lane)!, start, start + bucketMs, c.jobs, c.failed] as [number, number, number, number, number];
  });
  return { lanes, rows, max };
}
const MAX_BARS = 10_000;
const STATUS_COLOR: Record<string, string> = {
  completed: "#2f9e44", failed: "#e03131", dead_letter: "#c92a2a", processing: "#f59f00",
  cancelled: "#868e96", pending: "#74c0fc", scheduled: "#74c0fc", waiting: "#adb5bd",
};

function localInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

/** Bars as [lane, start, end, status, id] rows for the custom series. */
export function bars(items: Item[], by: "worker" | "queue", now: number) {
  const lanes: string[] = [];
  const index = new Map<string, number>();
  const rows: [number, number, number, string, string][] = [];
  for (const it of items) {
    if (it.startMs == null) continue;
    const lane = by === "worker" ? it.workerId ?? "(no worker)" : it.queue;
    if (!index.has(lane)) {
      index.set(lane, lanes.length);
      lanes.push(lane);
    }
    rows.push([index.get(lane)!, it.startMs, it.endMs ?? now, it.status, it.id]);
  }
  return { lanes, rows };
}

/** Per lane, the indexes of its rows ordered by start: what the arrow keys walk. */
type Lane = [number, number, number, ...unknown[]];

/** Per lane, the indexes of its rows ordered by start: what the arrow keys walk. */
export function laneOrder(rows: Lane[], laneCount: number): number[][] {
  const out: number[][] = Array.from({ length: laneCount }, () => []);
  rows.forEach((r, i) => out[r[0]]?.push(i));
  for (const l of out) l.sort((a, b) => rows[a][1] - rows[b][1]);
  return out;
}

/** Where an arrow key moves the cursor (a row index): left/right within the lane, up/down to
 * the neighbouring lane's bar that starts nearest, Home/End to the lane's ends. */
export function moveCursor(key: string, cur: number | null, rows: Lane[], order: number[][]): number | null {
  if (!rows.length) return null;
  if (cur === null || !rows[cur]) return order.find((l) => l.length)?.[0] ?? null;
  const lane = rows[cur][0];
  const inLane = order[lane];
  const at = inLane.indexOf(cur);
  switch (key) {
    case "ArrowRight": return inLane[Math.min(at + 1, inLane.length - 1)];
    case "ArrowLeft": return inLane[Math.max(at - 1, 0)];
    case "Home": return inLane[0];
    case "End": return inLane[inLane.length - 1];
    case "ArrowDown":
    case "ArrowUp": {
      const step = key === "ArrowDown" ? 1 : -1;
      for (let l = lane + step; l >= 0 && l < order.length; l += step) {
        if (!order[l].length) continue;
        const t = rows[cur][1];
        return order[l].reduce((best, i) => (Math.abs(rows[i][1] - t) < Math.abs(rows[best][1] - t) ? i : best), order[l][0]);
      }
      return cur;
    }
    default: return cur;
  }
}

export default function TimelinePage() {
  const client = useClient();
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const now = useMemo(() => Date.now(), []);
  const from = params.get("from") ?? localInput(now - 15 * 60_000);
  const to = params.get("to") ?? localInput(now + 60_000);
  const queue = params.get("queue") ?? "";
  const by = (params.get("lanes") as "worker" | "queue") ?? "worker";
  const view = (params.get("view") as "auto" | "bars" | "density") ?? "auto";
  const { ref: plotRef, width: boxWidth } = useElementSize();
  const plotWidth = Math.max(200, (boxWidth || 1000) - 164); // grid: 140 px left, 24 right
  const [items, setItems] = useState<Item[]>([]);
  const [truncated, setTruncated] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  const [draft, setDraft] = useState({ from, to, queue });

  useEffect(() => {
    let stop = false;
    (async () => {
      const got: Item[] = [];
      let after: string | null = null;
      setError(null);
      // Page through the window (1,000 per request) up to what stays smooth on a canvas.
      do {
        const r = await client.query(TimelineDoc, {
          from: new Date(from).toISOString(), to: new Date(to).toISOString(), queue: queue || null, after,
        }, { requestPolicy: "network-only" }).toPromise();
        if (stop) return;
        if (r.error) { setError(r.error); break; }
        got.push(...(r.data?.jobTimeline.items ?? []));
        after = r.data?.jobTimeline.nextCursor ?? null;
        setItems([...got]);
      } while (after && got.length < MAX_BARS);
      setTruncated(!!after);
    })();
    return () => { stop = true; };
  }, [client, from, to, queue]);

  const barView = useMemo(() => bars(items, by, Date.now()), [items, by]);
  // Zoomed out (more bars than the plot has pixels for, or more than we load): counts per
  // lane and slice from the server instead of individual bars.
  const dense = view === "density" || (view === "auto" && (truncated || barView.rows.length > BARS_PER_PX * plotWidth));
  const buckets = Math.min(2000, Math.max(20, Math.floor(plotWidth / 4)));
  const [density, setDensity] = useState<TimelineDensityQuery["jobTimelineDensity"] | null>(null);
  useEffect(() => {
    if (!dense) return;
    let stop = false;
    client.query(DensityDoc, {
      from: new Date(from).toISOString(), to: new Date(to).toISOString(), queue: queue || null, lanes: by, buckets,
    }, { requestPolicy: "network-only" }).toPromise().then((r) => {
      if (stop) return;
      if (r.error) setError(r.error);
      setDensity(r.data?.jobTimelineDensity ?? null);
    });
    return () => { stop = true; };
  }, [client, dense, from, to, queue, by, buckets]);
  const densityView = useMemo(() => density ? densityRows(density.cells, density.fromMs, density.bucketMs) : { lanes: [], rows: [], max: 0 }, [density]);
  const { lanes, rows } = dense ? densityView : barView;
  // Keyboard access to the canvas: a cursor over the bars, announced in a live region.
  const order = useMemo(() => laneOrder(rows, lanes.length), [rows, lanes]);
  const [cursor, setCursor] = useState<number | null>(null);
  useEffect(() => setCursor(null), [rows]);
  const cur = cursor === null ? null : rows[cursor] ?? null;
  function onBarKey(e: KeyboardEvent) {
    if (e.key === "Enter" && cur) {
      e.preventDefault();
      open(cur);
      return;
    }
    if (!["ArrowRight", "ArrowLeft", "ArrowUp", "ArrowDown", "Home", "End"].includes(e.key)) return;
    e.preventDefault();
    setCursor(moveCursor(e.key, cursor, rows, order));
  }
  /** A bar opens its job; a density cell zooms into its slice (whole minutes: the inputs'). */
  function open(row: Lane) {
    if (!dense) {
      navigate(`/jobs/${row[4] as string}`);
      return;
    }
    const next = new URLSearchParams(params);
    next.set("from", localInput(Math.floor(row[1] / 60_000) * 60_000));
    next.set("to", localInput(Math.ceil((row[2] + 1) / 60_000) * 60_000));
    next.delete("view");
    setParams(next);
  }
  // Open on the span that has work in it (zoom out with the slider for the whole window).
  const extent = useMemo(() => {
    const lo = new Date(from).getTime();
    const hi = new Date(to).getTime();
    if (!rows.length) return [lo, hi];
    let a = Infinity;
    let b = -Infinity;
    for (const r of rows) {
      a = Math.min(a, r[1]);
      b = Math.max(b, r[2]);
    }
    const pad = Math.max(1000, (b - a) * 0.05);
    return [Math.max(lo, a - pad), Math.min(hi, b + pad)];
  }, [rows, from, to]);
  const max = densityView.max;
  const option = useMemo(() => ({
    tooltip: {
      formatter: (p: { value: Lane }) => dense
        ? `${lanes[p.value[0]]} · ${new Date(p.value[1]).toLocaleTimeString()}<br/>${p.value[3]} started, ${p.value[4]} failed`
        : `${p.value[4]}<br/>${p.value[3]} · ${Math.round(p.value[2] - p.value[1])} ms`,
    },
    // No transition animation: with 10,000 bars, tweening every rect on each zoom step is what
    // makes frames long (bench/timeline_render.py).
    animation: false,
    grid: { left: 140, right: 24, top: 16, bottom: 72 },
    dataZoom: [
      { type: "slider", xAxisIndex: 0, filterMode: "weakFilter", bottom: 16 },
      { type: "inside", xAxisIndex: 0, filterMode: "weakFilter" },
      { type: "inside", yAxisIndex: 0, zoomOnMouseWheel: false, moveOnMouseWheel: true },
    ],
    xAxis: { type: "time", min: extent[0], max: extent[1] },
    yAxis: { type: "category", data: lanes, inverse: true },
    series: [{
      type: "custom",
      encode: { x: [1, 2], y: 0 },
      // Small chunks: a zoom step repaints 10,000 bars over a few frames, none of them long.
      progressive: 1000,
      progressiveThreshold: 2000,
      data: rows,
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      renderItem: (params: any, api: any) => {
        const lane = api.value(0);
        const start = api.coord([api.value(1), lane]);
        const end = api.coord([api.value(2), lane]);
        const h = Math.min(22, api.size([0, 1])[1] * 0.6);
        const w = Math.max(1, end[0] - start[0]);
        const row = rows[params.dataIndex];
        if (dense) {
          // Opacity by log(count): a slice with 1 job stays visible next to one with 1,000.
          const jobs = Number(row?.[3] ?? 0);
          const failed = Number(row?.[4] ?? 0);
          return {
            type: "rect",
            shape: { x: start[0], y: start[1] - h / 2, width: w, height: h },
            style: {
              fill: failed * 10 >= jobs && failed > 0 ? STATUS_COLOR.failed : STATUS_COLOR.completed,
              opacity: 0.25 + 0.75 * (Math.log1p(jobs) / Math.log1p(Math.max(1, max))),
            },
          };
        }
        return {
          type: "rect",
          shape: { x: start[0], y: start[1] - h / 2, width: w, height: h },
          style: { fill: STATUS_COLOR[String(row?.[3] ?? "")] ?? "#868e96" },
        };
      },
    }],
  }), [rows, lanes, extent, dense, max]);

  function apply(e: FormEvent) {
    e.preventDefault();
    const next = new URLSearchParams(params);
    next.set("from", draft.from);
    next.set("to", draft.to);
    if (draft.queue) next.set("queue", draft.queue);
    else next.delete("queue");
    setParams(next);
  }

  return (
    <Page title="Timeline">
      <Paper withBorder p="sm" component="form" onSubmit={apply} aria-label="Timeline filters">
        <Group align="flex-end">
          <TextInput label="From" type="datetime-local" value={draft.from} onChange={(e) => setDraft({ ...draft, from: e.currentTarget.value })} />
          <TextInput label="To" type="datetime-local" value={draft.to} onChange={(e) => setDraft({ ...draft, to: e.currentTarget.value })} />
          <TextInput label="Queue" value={draft.queue} onChange={(e) => setDraft({ ...draft, queue: e.currentTarget.value })} placeholder="all" />
          <Button type="submit">Show</Button>
          <SegmentedControl
            aria-label="Lanes"
            value={by}
            onChange={(v) => { const n = new URLSearchParams(params); n.set("lanes", v); setParams(n); }}
            data={[{ value: "worker", label: "Lanes by worker" }, { value: "queue", label: "Lanes by queue" }]}
          />
          <SegmentedControl
            aria-label="View"
            value={view}
            onChange={(v) => { const n = new URLSearchParams(params); n.set("view", v); setParams(n); }}
            data={[{ value: "auto", label: "Auto" }, { value: "bars", label: "Bars" }, { value: "density", label: "Density" }]}
          />
        </Group>
      </Paper>
      <ErrorNote error={error} />
      <Text size="sm" c="dimmed">
        {dense
          ? `Density: ${rows.reduce((n, r) => n + Number(r[3]), 0).toLocaleString()} started jobs in ${density ? Math.round(density.bucketMs / 1000).toLocaleString() : "…"} s slices (darker = more; red = at least 1 in 10 failed). Click a slice to zoom into it.`
          : `${rows.length.toLocaleString()} started jobs in view${truncated ? ` (first ${MAX_BARS.toLocaleString()}; narrow the window for the rest)` : ""}. Scroll or drag to zoom and pan; click a bar to open the job.`}
      </Text>
      <Paper
        ref={plotRef}
        withBorder
        p="xs"
        tabIndex={0}
        role="group"
        aria-label="Timeline bars"
        aria-describedby="timeline-keys timeline-cursor"
        onKeyDown={onBarKey}
        onFocus={() => { if (cursor === null && rows.length) setCursor(moveCursor("Home", null, rows, order)); }}
        className="timeline-bars"
      >
        <EChart
          focusIndex={cursor}
          option={option}
          height={Math.max(240, Math.min(640, lanes.length * 28 + 100))}
          label={dense
            ? "Gantt chart density: started jobs per lane and time slice, darker for more, red where many failed"
            : "Gantt chart of job executions, coloured by status: green completed, red failed, yellow processing"}
          onClick={(p) => {
            const row = rows[p.dataIndex];
            if (row) open(row);
          }}
        />
        <Text id="timeline-cursor" size="sm" aria-live="polite" data-job-id={!dense && cur ? String(cur[4]) : ""}>
          {cur
            ? dense
              ? `${lanes[cur[0]]}, ${new Date(cur[1]).toLocaleTimeString()}: ${Number(cur[3]).toLocaleString()} started, ${Number(cur[4]).toLocaleString()} failed (slice ${order[cur[0]].indexOf(cursor!) + 1} of ${order[cur[0]].length} in this lane; Enter zooms in)`
              : `Job ${String(cur[4])}, ${lanes[cur[0]]}: ${String(cur[3])}, ${Math.round(cur[2] - cur[1]).toLocaleString()} ms (bar ${order[cur[0]].indexOf(cursor!) + 1} of ${order[cur[0]].length} in this lane)`
            : rows.length ? "Focus the chart to walk its bars with the keyboard." : ""}
        </Text>
      </Paper>
      <Text id="timeline-keys" size="xs" c="dimmed">
        Keyboard: focus the chart, then Left/Right for the previous/next bar in a lane, Up/Down for another lane, Home/End for a lane's first/last bar, Enter to open the job.
      </Text>
      <Group gap="md">
        {Object.entries({ completed: "Completed", failed: "Failed", processing: "Processing" }).map(([k, v]) => (
          <Group key={k} gap={4}><span style={{ width: 12, height: 12, background: STATUS_COLOR[k], display: "inline-block", borderRadius: 2 }} /><Text size="sm">{v}</Text></Group>
        ))}
      </Group>
    </Page>
  );
}
