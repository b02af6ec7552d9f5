// Shared pieces of the analytics pages: the view from the URL, the range / filter bar, big numbers
// with trends, charts as labelled figures with a data-table alternative, and the loading / error /
// empty states.
import { useEffect, useMemo, useRef, useState, type FormEvent, type ReactNode } from "react";
import {
  Autocomplete, Button, Center, Group, Loader, Paper, SegmentedControl, Stack, Table, Text, TextInput, Title,
} from "@mantine/core";
import { useSearchParams } from "react-router";
import { useQuery, type CombinedError } from "urql";
import type { EChartsCoreOption } from "echarts/core";
import { EChart } from "../charts/EChart";
import { ErrorNote } from "../ui/Errors";
import { Page } from "../ui/Page";
import { FilterOptionsQuery } from "./documents";
import { fromLocalInput, PRESETS, previousName, toLocalInput, viewOf, withParams, type View } from "./range";

/** The view (range + filters) of the current URL; presets are re-anchored to "now" only when the
 * query string changes, so a page's query stays stable while it is open. */
export function useView(): [View, URLSearchParams, (changes: Record<string, string | null>) => void] {
  const [params, setParams] = useSearchParams();
  const key = params.toString();
  const view = useMemo(() => viewOf(new URLSearchParams(key)), [key]);
  const update = (changes: Record<string, string | null>) => setParams(withParams(params, changes));
  return [view, params, update];
}

/** Marks `analytics:<page>:data` once the page first shows its data (the e2e test measures
 * navigation -> data with it). */
export function useDataMark(page: string, ready: boolean) {
  const done = useRef(false);
  useEffect(() => {
    if (ready && !done.current) {
      done.current = true;
      performance.mark(`analytics:${page}:data`);
    }
  }, [page, ready]);
}

// ---------------------------------------------------------------------------------------------
// formatting

export function fmtCount(n: number | null | undefined): string {
  if (n === null || n === undefined) return "—";
  return Math.round(n).toLocaleString("en-US");
}
export function fmtPct(x: number | null | undefined, digits = 1): string {
  if (x === null || x === undefined) return "—";
  return `${(x * 100).toFixed(digits)}%`;
}
export function fmtMoney(x: number | null | undefined): string {
  if (x === null || x === undefined) return "—";
  // per-job costs are fractions of a cent: show them to two significant digits, not as $0.00
  if (x !== 0 && Math.abs(x) < 0.01) return x.toLocaleString("en-US", { style: "currency", currency: "USD", maximumSignificantDigits: 2 });
  return x.toLocaleString("en-US", { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: Math.abs(x) < 1 ? 4 : 2 });
}
export function fmtDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  if (ms < 86_400_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${(ms / 86_400_000).toFixed(1)} d`;
}
export function fmtBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}
export function fmtAt(iso: string, interval: "minute" | "hour" | "day" = "hour"): string {
  const d = new Date(iso);
  if (interval === "day") return d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false });
}

// ---------------------------------------------------------------------------------------------
// trends

export type Direction = "up" | "down" | "flat" | "none";

/** Which way a change went; under 0.05% counts as flat, no previous figure as none. */
export function direction(change: number | null | undefined): Direction {
  if (change === null || change === undefined || Number.isNaN(change)) return "none";
  if (change > 0.0005) return "up";
  if (change < -0.0005) return "down";
  return "flat";
}

const ARROW: Record<Direction, string> = { up: "▲", down: "▼", flat: "▶", none: "" };

export interface TrendValue { value?: number | null; previous?: number | null; change?: number | null }

/** A big number with its change versus the previous equal period. `better` says which direction
 * is good news (green) for this figure. */
export function Stat({ label, trend, format, better = "up", previous }: {
  label: string;
  trend: TrendValue;
  format: (n: number | null | undefined) => string;
  better?: "up" | "down";
  previous: string;
}) {
  const dir = direction(trend.change);
  const good = dir === "flat" || dir === "none" ? null : dir === better;
  const color = good === null ? "dimmed" : good ? "teal" : "red";
  const pct = trend.change === null || trend.change === undefined ? "" : `${Math.abs(trend.change * 100).toFixed(1)}%`;
  const said = dir === "none"
    ? `no figure for ${previous}`
    : `${dir === "flat" ? "unchanged" : `${dir} ${pct}`} versus ${previous} (${format(trend.previous)})`;
  return (
    <Paper withBorder p="md" component="section" aria-label={label}>
      <Text size="sm" c="dimmed" fw={600}>{label}</Text>
      <Text fz={28} fw={700} data-figure={label}>{format(trend.value)}</Text>
      <Text size="sm" c={color} data-trend={dir} aria-label={said} title={said}>
        {dir === "none" ? "no previous data" : <>{ARROW[dir]} {dir === "flat" ? "0.0%" : pct} <Text span size="xs" c="dimmed">vs {format(trend.previous)}</Text></>}
      </Text>
    </Paper>
  );
}

/** A single figure without a trend. */
export function Figure({ label, value, hint }: { label: string; value: string; hint?: string }) {
  return (
    <Paper withBorder p="md" component="section" aria-label={label}>
      <Text size="sm" c="dimmed" fw={600}>{label}</Text>
      <Text fz={28} fw={700} data-figure={label}>{value}</Text>
      {hint && <Text size="xs" c="dimmed">{hint}</Text>}
    </Paper>
  );
}

// ---------------------------------------------------------------------------------------------
// charts and tables

export interface Column<T> { label: string; value: (row: T) => ReactNode; numeric?: boolean }

/** A real table (header cells, a caption naming it); the first column heads its row. */
export function DataTable<T>({ caption, columns, rows, rowKey, empty = "No rows.", hideCaption = false }: {
  caption: string;
  columns: Column<T>[];
  rows: T[];
  rowKey: (row: T, i: number) => string;
  empty?: string;
  hideCaption?: boolean;
}) {
  if (rows.length === 0) return <Text size="sm" c="dimmed">{empty}</Text>;
  return (
    <Table.ScrollContainer minWidth={480} type="native">
      <Table striped withTableBorder aria-label={caption} highlightOnHover>
        {!hideCaption && <Table.Caption style={{ captionSide: "top", textAlign: "left" }}>{caption}</Table.Caption>}
        <Table.Thead>
          <Table.Tr>
            {columns.map((c) => <Table.Th key={c.label} scope="col" style={c.numeric ? { textAlign: "right" } : undefined}>{c.label}</Table.Th>)}
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.map((r, i) => (
            <Table.Tr key={rowKey(r, i)}>
              {columns.map((c, j) => j === 0
                ? <Table.Th key={c.label} scope="row" fw={500}>{c.value(r)}</Table.Th>
                : <Table.Td key={c.label} style={c.numeric ? { textAlign: "right", fontVariantNumeric: "tabular-nums" } : undefined}>{c.value(r)}</Table.Td>)}
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}

/** A chart as a figure: caption (its title), the canvas labelled for screen readers, and the same
 * numbers as a table behind a disclosure. */
export function ChartFigure<T>({ title, label, option, table, height = 280, empty }: {
  title: string;
  label: string;
  option: EChartsCoreOption;
  table?: { columns: Column<T>[]; rows: T[]; rowKey: (row: T, i: number) => string };
  height?: number;
  /** Shown instead of the chart when set (no data for it). */
  empty?: string | null;
}) {
  return (
    <Paper withBorder p="sm" component="figure" m={0} aria-label={title}>
      <Title order={2} size="h4" component="figcaption">{title}</Title>
      {empty ? (
        <Text size="sm" c="dimmed" py="lg">{empty}</Text>
      ) : (
        <>
          <EChart option={option} label={label} height={height} />
          {table && (
            <details>
              <summary><Text span size="sm">Data table: {title}</Text></summary>
              <DataTable caption={title} hideCaption columns={table.columns} rows={table.rows} rowKey={table.rowKey} />
            </details>
          )}
        </>
      )}
    </Paper>
  );
}

const GRID = { left: 56, right: 24, top: 40, bottom: 32, containLabel: false };

/** Time-series lines: each series is [time ms, value] pairs. */
export function lineOption(series: { name: string; data: [number, number | null][]; color?: string; area?: boolean }[],
  yName: string, yFormat?: (v: number) => string, extra: Record<string, unknown> = {}): EChartsCoreOption {
  return {
    tooltip: { trigger: "axis", ...(yFormat ? { valueFormatter: (v: number) => (v === null || v === undefined ? "—" : yFormat(v)) } : {}) },
    ...(series.length > 1 ? { legend: { type: "scroll", top: 0 } } : {}),
    grid: GRID,
    xAxis: { type: "time" },
    // (an explicit `axisLabel: undefined` hides ECharts' default tick labels: only set it to format)
    yAxis: { type: "value", name: yName, nameGap: 12, ...(yFormat ? { axisLabel: { formatter: yFormat } } : {}) },
    series: series.map((s) => ({
      name: s.name, type: "line", showSymbol: s.data.length < 40, connectNulls: false, data: s.data, color: s.color,
      ...(s.area ? { areaStyle: { opacity: 0.15 } } : {}),
    })),
    ...extra,
  };
}

/** Category bars (one or more series over the same categories). */
export function barOption(categories: string[], series: { name: string; data: (number | null)[]; color?: string; stack?: string }[],
  yName: string, opts: { horizontal?: boolean; yFormat?: (v: number) => string } = {}): EChartsCoreOption {
  const cat = { type: "category", data: categories, axisLabel: opts.horizontal ? { width: 140, overflow: "truncate" } : { interval: 0, rotate: categories.length > 6 ? 30 : 0 } };
  const val = { type: "value", name: yName, ...(opts.yFormat ? { axisLabel: { formatter: opts.yFormat } } : {}) };
  return {
    tooltip: { trigger: "axis", ...(opts.yFormat ? { valueFormatter: (v: number) => (v === null || v === undefined ? "—" : opts.yFormat!(v)) } : {}) },
    ...(series.length > 1 ? { legend: { top: 0 } } : {}),
    grid: opts.horizontal ? { left: 150, right: 24, top: 32, bottom: 24 } : { ...GRID, bottom: categories.length > 6 ? 72 : 32 },
    xAxis: opts.horizontal ? val : cat,
    yAxis: opts.horizontal ? { ...cat, inverse: true } : val,
    series: series.map((s) => ({ name: s.name, type: "bar", data: s.data, color: s.color, stack: s.stack })),
  };
}

export const COLORS = { ok: "#2f9e44", bad: "#e03131", warn: "#f08c00", info: "#1971c2", dlq: "#9c36b5", grey: "#868e96" };
export const toPoints = (pts: { at: string; value: number }[]): [number, number][] => pts.map((p) => [Date.parse(p.at), p.value]);

// ---------------------------------------------------------------------------------------------
// the page frame: title, filter bar, states

function CustomRange({ view, update }: { view: View; update: (c: Record<string, string | null>) => void }) {
  const [from, setFrom] = useState(toLocalInput(view.from));
  const [to, setTo] = useState(toLocalInput(view.to));
  function apply(e: FormEvent) {
    e.preventDefault();
    update({ range: "custom", from: fromLocalInput(from), to: fromLocalInput(to) });
  }
  return (
    <form onSubmit={apply} aria-label="Custom range">
      <Group gap="xs" align="flex-end">
        <TextInput type="datetime-local" label="From" value={from} onChange={(e) => setFrom(e.currentTarget.value)} size="xs" required />
        <TextInput type="datetime-local" label="To" value={to} onChange={(e) => setTo(e.currentTarget.value)} size="xs" required />
        <Button type="submit" size="xs" variant="light">Apply range</Button>
      </Group>
    </form>
  );
}

/** Free text with suggestions; applied on Enter, on picking a suggestion, or when left. */
function FilterInput({ label, value, options, onApply }: { label: string; value: string | null; options: string[]; onApply: (v: string | null) => void }) {
  const [text, setText] = useState(value ?? "");
  useEffect(() => setText(value ?? ""), [value]);
  const apply = (v: string) => { if ((v.trim() || null) !== value) onApply(v.trim() || null); };
  return (
    <Autocomplete
      label={label} size="xs" w={180} placeholder="all" data={options} value={text} onChange={setText} clearable
      onOptionSubmit={(v) => apply(v)} onBlur={() => apply(text)}
      onKeyDown={(e) => { if (e.key === "Enter") apply(text); }}
      onClear={() => apply("")}
      comboboxProps={{ withinPortal: true }}
    />
  );
}

export function FilterBar({ view, update, filters = true }: {
  view: View;
  update: (c: Record<string, string | null>) => void;
  filters?: boolean | "queue";
}) {
  const [{ data: opts }] = useQuery({ query: FilterOptionsQuery, pause: !filters });
  const queues = useMemo(() => [...new Set((opts?.queueMetrics ?? []).map((q) => q.name))].sort(), [opts]);
  const types = useMemo(() => [...new Set((opts?.jobTypes ?? []).filter((t) => !view.queue || t.queue === view.queue).map((t) => t.jobType))].sort(), [opts, view.queue]);
  return (
    <Paper withBorder p="xs" component="section" aria-label="Range and filters">
      <Group gap="md" align="flex-end" wrap="wrap">
        <Stack gap={2}>
          <Text size="xs" fw={500} id="analytics-range-label">Range</Text>
          <SegmentedControl
            aria-labelledby="analytics-range-label" size="xs"
            data={[...PRESETS.map((p) => ({ value: p.value, label: p.label })), { value: "custom", label: "Custom" }]}
            value={view.range}
            onChange={(v) => update(v === "custom"
              ? { range: "custom", from: view.from, to: view.to }
              : { range: v === "24h" ? null : v, from: null, to: null })}
          />
        </Stack>
        {view.range === "custom" && <CustomRange key={`${view.from}/${view.to}`} view={view} update={update} />}
        {filters && <FilterInput label="Queue" value={view.queue} options={queues} onApply={(v) => update({ queue: v })} />}
        {filters === true && <FilterInput label="Job type" value={view.jobType} options={types} onApply={(v) => update({ jobType: v })} />}
      </Group>
    </Paper>
  );
}

export function Loading() {
  // the label sits on a status region: a bare Loader (a span) may not carry aria-label (axe)
  return <Center p="xl" role="status" aria-label="Loading"><Loader /></Center>;
}

/** Title + filter bar + the query's state: loading, error (with the API's message), empty, data. */
export function AnalyticsFrame({ title, view, update, filters = true, fetching, error, empty, emptyText, children, description }: {
  title: string;
  view: View;
  update: (c: Record<string, string | null>) => void;
  filters?: boolean | "queue";
  fetching: boolean;
  error?: CombinedError;
  /** true when the query answered and there is nothing to show */
  empty: boolean;
  emptyText?: string;
  children: ReactNode;
  description?: string;
}) {
  const scope = [view.queue && `queue ${view.queue}`, view.jobType && `job type ${view.jobType}`].filter(Boolean).join(", ");
  return (
    <Page title={title}>
      {description && <Text size="sm" c="dimmed" mt={-8}>{description}</Text>}
      <FilterBar view={view} update={update} filters={filters} />
      {view.invalid && <Text role="alert" c="red" size="sm">{view.invalid}</Text>}
      <ErrorNote error={error} />
      {fetching && <Loading />}
      {!fetching && !error && !view.invalid && empty && (
        <Paper withBorder p="xl" role="status">
          <Text fw={600}>No data for this range{scope ? ` (${scope})` : ""}.</Text>
          <Text size="sm" c="dimmed">{emptyText ?? "Try a longer range or clear the filters."}</Text>
        </Paper>
      )}
      {!fetching && !error && !view.invalid && !empty && children}
    </Page>
  );
}

export { previousName };
