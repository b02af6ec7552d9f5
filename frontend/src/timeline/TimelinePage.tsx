import { useEffect, useMemo, useState, type FormEvent } from "react";
import { Button, Group, Paper, SegmentedControl, Text, TextInput } from "@mantine/core";
import { useNavigate, useSearchParams } from "react-router";
import { useClient } from "urql";
import { graphql } from "../gql";
import type { TimelineQuery } from "../gql/graphql";
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

type Item = TimelineQuery["jobTimeline"]["items"][number];
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

export default function TimelinePage() {
  const client = useClient();
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const now = useMemo(() => Date.now(), []);
  const from = params.get("from") ?? localInput(now - 15 * 60_000);
  const to = params.get("to") ?? localInput(now + 60_000);
  const queue = params.get("queue") ?? "";
  const by = (params.get("lanes") as "worker" | "queue") ?? "worker";
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

  const { lanes, rows } = useMemo(() => bars(items, by, Date.now()), [items, by]);
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
  const option = useMemo(() => ({
    tooltip: {
      formatter: (p: { value: [number, number, number, string, string] }) =>
        `${p.value[4]}<br/>${p.value[3]} · ${Math.round(p.value[2] - p.value[1])} ms`,
    },
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
      progressive: 4000,
      data: rows,
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      renderItem: (params: any, api: any) => {
        const lane = api.value(0);
        const start = api.coord([api.value(1), lane]);
        const end = api.coord([api.value(2), lane]);
        const h = Math.min(22, api.size([0, 1])[1] * 0.6);
        const w = Math.max(1, end[0] - start[0]);
        return {
          type: "rect",
          shape: { x: start[0], y: start[1] - h / 2, width: w, height: h },
          style: { fill: STATUS_COLOR[rows[params.dataIndex]?.[3] ?? ""] ?? "#868e96" },
        };
      },
    }],
  }), [rows, lanes, extent]);

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
        </Group>
      </Paper>
      <ErrorNote error={error} />
      <Text size="sm" c="dimmed">
        {rows.length.toLocaleString()} started jobs in view{truncated ? ` (first ${MAX_BARS.toLocaleString()}; narrow the window for the rest)` : ""}.
        Scroll or drag to zoom and pan; click a bar to open the job.
      </Text>
      <Paper withBorder p="xs">
        <EChart
          option={option}
          height={Math.max(240, Math.min(640, lanes.length * 28 + 100))}
          label="Gantt chart of job executions, coloured by status: green completed, red failed, yellow processing"
          onClick={(p) => {
            const row = rows[p.dataIndex];
            if (row) navigate(`/jobs/${row[4]}`);
          }}
        />
      </Paper>
      <Group gap="md">
        {Object.entries({ completed: "Completed", failed: "Failed", processing: "Processing" }).map(([k, v]) => (
          <Group key={k} gap={4}><span style={{ width: 12, height: 12, background: STATUS_COLOR[k], display: "inline-block", borderRadius: 2 }} /><Text size="sm">{v}</Text></Group>
        ))}
      </Group>
    </Page>
  );
}
