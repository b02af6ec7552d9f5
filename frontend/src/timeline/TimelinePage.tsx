import { useEffect, useMemo, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { Button, Group, Paper, SegmentedControl, Text, TextInput } from "@mantine/core";
import { useElementSize } from "@mantine/hooks";
import { useNavigate, useSearchParams } from "react-router";
import { useClient } from "urql";
import { graphql } from "../gql";
import type { TimelineDensityQuery, TimelineQuery } from "../gql/graphql";
import { GanttCanvas, toGantt, type GanttHandle, type GanttStyle } from "./GanttCanvas";
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

const STATUS_KEYS = Object.keys(STATUS_COLOR);
const BAR_STYLES: GanttStyle[] = [...STATUS_KEYS.map((k) => ({ fill: STATUS_COLOR[k], alpha: 1 })), { fill: "#868e96", alpha: 1 }];
/** Density cells: green or red, each in LEVELS opacities (log of the count). */
const LEVELS = 8;
const DENSITY_STYLES: GanttStyle[] = ["completed", "failed"].flatMap((k) =>
  Array.from({ length: LEVELS }, (_, l) => ({ fill: STATUS_COLOR[k], alpha: 0.25 + (0.75 * (l + 1)) / LEVELS })));

/** A density cell's style: red when at least 1 in 10 failed, darker for more jobs. */
export function densityStyle(jobs: number, failed: number, max: number): number {
  const level = Math.min(LEVELS - 1, Math.floor((LEVELS * Math.log1p(jobs)) / Math.log1p(Math.max(1, max)) - 1e-9));
  return (failed * 10 >= jobs && failed > 0 ? LEVELS : 0) + Math.max(0, level);
}

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
    const zoom: Record<string, number> = { "+": 0.5, "=": 0.5, "-": 2 };
    if (e.key in zoom || e.key === "0") {
      e.preventDefault();
      if (e.key === "0") chart.current?.reset();
      else chart.current?.zoom(zoom[e.key]);
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
  const gantt = useMemo(() => toGantt(rows, dense
    ? (r) => densityStyle(Number(r[3]), Number(r[4]), max)
    : (r) => { const k = STATUS_KEYS.indexOf(String(r[3])); return k < 0 ? STATUS_KEYS.length : k; }), [rows, dense, max]);
  const chart = useRef<GanttHandle>(null);
  function describe(i: number): string {
    const r = rows[i];
    if (!r) return "";
    return dense
      ? `${lanes[r[0]]} · ${new Date(r[1]).toLocaleTimeString()}\n${Number(r[3]).toLocaleString()} started, ${Number(r[4]).toLocaleString()} failed`
      : `${String(r[4])}\n${String(r[3])} · ${Math.round(r[2] - r[1]).toLocaleString()} ms`;
  }

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
          : `${rows.length.toLocaleString()} started jobs in view${truncated ? ` (first ${MAX_BARS.toLocaleString()}; narrow the window for the rest)` : ""}. Scroll or drag to zoom and pan (double-click: whole window); click a bar to open the job.`}
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
        <GanttCanvas
          handle={chart}
          data={gantt}
          lanes={lanes}
          styles={dense ? DENSITY_STYLES : BAR_STYLES}
          extent={extent as [number, number]}
          cursor={cursor}
          describe={describe}
          height={Math.max(240, Math.min(640, lanes.length * 28 + 100))}
          label={dense
            ? "Gantt chart density: started jobs per lane and time slice, darker for more, red where many failed"
            : "Gantt chart of job executions, coloured by status: green completed, red failed, yellow processing"}
          onPick={(i) => {
            const row = rows[i];
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
        Keyboard: focus the chart, then Left/Right for the previous/next bar in a lane, Up/Down for another lane, Home/End for a lane's first/last bar, Enter to open the job; + and - zoom, 0 shows the whole window.
      </Text>
      <Group gap="md">
        {Object.entries({ completed: "Completed", failed: "Failed", processing: "Processing" }).map(([k, v]) => (
          <Group key={k} gap={4}><span style={{ width: 12, height: 12, background: STATUS_COLOR[k], display: "inline-block", borderRadius: 2 }} /><Text size="sm">{v}</Text></Group>
        ))}
      </Group>
    </Page>
  );
}
