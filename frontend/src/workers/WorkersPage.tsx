import { useEffect, useMemo, useRef, useState, type FormEvent } from "react";
import { ActionIcon, Badge, Button, Card, Code, Group, Modal, NumberInput, SimpleGrid, Stack, Switch, Table, Text, Title } from "@mantine/core";
import { Link } from "react-router";
import { useMutation, useQuery } from "urql";
import { EChart } from "../charts/EChart";
import type { WorkersQuery as WorkersData } from "../gql/graphql";
import { useLiveBatches } from "../live/useLive";
import { ErrorNote } from "../ui/Errors";
import { fmtBytes, fmtMs, fmtNum, shortId } from "../ui/format";
import { Page } from "../ui/Page";
import { QuietWorker, RestartWorker, ResumeWorker, ScaleGroup, SetAutoscale, StopWorker, WorkerEventsSub, WorkerGroupHistory, WorkerLogsQuery, WorkersQuery } from "./documents";

export { WorkersQuery, WorkerEventsSub };

type Worker = WorkersData["workers"][number];
type WorkerGroup = WorkersData["workerGroups"][number];
/** The autoscaling settings as the API stores them (docs/workers.md). */
type Autoscale = { min: number; max: number; targetBacklogPerWorker?: number | null; latencySlaMs?: number | null; upCooldownS?: number | null; downCooldownS?: number | null; hysteresis?: number | null };

/** CPU and memory samples per worker, from the page's own 5 s re-reads (kept while it is open). */
const SAMPLES = 60;
type Samples = Map<string, { cpu: number[]; rss: number[] }>;

export function Sparkline({ values, label, max }: { values: number[]; label: string; max?: number }) {
  const w = 80, h = 20;
  if (values.length < 2) return <Text span size="xs" c="dimmed" aria-label={`${label}: not enough samples yet`}>·</Text>;
  const top = Math.max(max ?? 0, ...values, 1e-9);
  const pts = values.map((v, i) => `${(i / (values.length - 1)) * w},${h - (v / top) * h}`).join(" ");
  return (
    <svg width={w} height={h} role="img" aria-label={label} style={{ verticalAlign: "middle" }}>
      <polyline points={pts} fill="none" stroke="currentColor" strokeWidth={1.5} />
    </svg>
  );
}

function GroupCard({ g, onChanged }: { g: WorkerGroup; onChanged: () => void }) {
  const [scaled, scale] = useMutation(ScaleGroup);
  const [editing, setEditing] = useState(false);
  const auto = g.autoscale as Autoscale | null;
  const step = async (n: number) => {
    const r = await scale({ name: g.name, step: n });
    if (!r.error) onChanged();
  };
  return (
    <Card withBorder aria-label={`Group ${g.name}`} component="section">
      <Group justify="space-between">
        <Title order={2} size="h4">{g.name}</Title>
        {auto ? <Badge color="blue">autoscaling {auto.min}–{auto.max}</Badge> : <Badge color="gray">manual</Badge>}
      </Group>
      <Group mt="sm" gap="xs" align="center">
        <ActionIcon variant="default" aria-label={`Remove a worker from ${g.name}`} onClick={() => step(-1)} disabled={(g.desired ?? 0) <= 0} loading={scaled.fetching}>−</ActionIcon>
        <Text aria-label={`${g.name} workers`} fw={600}>{g.actual} / {g.desired ?? "—"}</Text>
        <ActionIcon variant="default" aria-label={`Add a worker to ${g.name}`} onClick={() => step(1)} loading={scaled.fetching}>+</ActionIcon>
        <Text size="sm" c="dimmed">live / desired{g.draining ? ` · ${g.draining} draining` : ""}</Text>
      </Group>
      <Text size="sm" mt="xs">
        Utilization {g.utilization === null || g.utilization === undefined ? "—" : `${Math.round(g.utilization * 100)}%`} ({g.busy}/{g.capacity} slots) · crashes last hour {g.crashesLastHour}
      </Text>
      {g.scaledReason && <Text size="xs" c="dimmed">last autoscale: {g.scaledReason}</Text>}
      <ErrorNote error={scaled.error} />
      <Button mt="sm" size="xs" variant="light" onClick={() => setEditing(true)}>Autoscaling…</Button>
      <Modal opened={editing} onClose={() => setEditing(false)} title={`Autoscaling of ${g.name}`}>
        <AutoscaleForm group={g.name} initial={auto} onDone={() => { setEditing(false); onChanged(); }} />
      </Modal>
    </Card>
  );
}

export function AutoscaleForm({ group, initial, onDone }: { group: string; initial: Autoscale | null; onDone: () => void }) {
  const [on, setOn] = useState(initial !== null);
  const [min, setMin] = useState<number>(initial?.min ?? 1);
  const [max, setMax] = useState<number>(initial?.max ?? 4);
  const [backlog, setBacklog] = useState<number | string>(initial?.targetBacklogPerWorker ?? 100);
  const [sla, setSla] = useState<number | string>(initial?.latencySlaMs ?? "");
  const [up, setUp] = useState<number>(initial?.upCooldownS ?? 15);
  const [down, setDown] = useState<number>(initial?.downCooldownS ?? 120);
  const [hyst, setHyst] = useState<number>(initial?.hysteresis ?? 0.2);
  const [saved, save] = useMutation(SetAutoscale);
  async function submit(e: FormEvent) {
    e.preventDefault();
    const autoscale = on ? {
      min, max, upCooldownS: up, downCooldownS: down, hysteresis: hyst,
      targetBacklogPerWorker: backlog === "" ? null : Number(backlog),
      latencySlaMs: sla === "" ? null : Number(sla),
    } : null;
    const r = await save({ name: group, autoscale });
    if (!r.error) onDone();
  }
  return (
    <form onSubmit={submit} aria-label={`Autoscaling of ${group}`}>
      <Stack>
        <Switch label="Autoscaling on" checked={on} onChange={(e) => setOn(e.currentTarget.checked)} />
        <Group grow>
          <NumberInput label="Minimum workers" min={0} value={min} onChange={(v) => setMin(Number(v))} disabled={!on} />
          <NumberInput label="Maximum workers" min={0} value={max} onChange={(v) => setMax(Number(v))} disabled={!on} />
        </Group>
        <Group grow>
          <NumberInput label="Target backlog per worker" min={1} value={backlog} onChange={setBacklog} disabled={!on} description="jobs waiting per worker" />
          <NumberInput label="Latency SLA (ms)" min={1} value={sla} onChange={setSla} disabled={!on} description="oldest wait allowed; empty: off" />
        </Group>
        <Group grow>
          <NumberInput label="Scale-up cooldown (s)" min={0} value={up} onChange={(v) => setUp(Number(v))} disabled={!on} />
          <NumberInput label="Scale-down cooldown (s)" min={0} value={down} onChange={(v) => setDown(Number(v))} disabled={!on} />
          <NumberInput label="Hysteresis" min={0} max={0.9} step={0.05} decimalScale={2} value={hyst} onChange={(v) => setHyst(Number(v))} disabled={!on} />
        </Group>
        <ErrorNote error={saved.error} />
        <Group justify="flex-end">
          <Button variant="default" onClick={onDone}>Cancel</Button>
          <Button type="submit" loading={saved.fetching}>Save autoscaling</Button>
        </Group>
      </Stack>
    </form>
  );
}

function WorkerActions({ w, onChanged, onLogs }: { w: Worker; onChanged: () => void; onLogs: () => void }) {
  const [r1, restart] = useMutation(RestartWorker);
  const [r2, quiet] = useMutation(QuietWorker);
  const [r3, resume] = useMutation(ResumeWorker);
  const [r4, stop] = useMutation(StopWorker);
  const run = async (fn: (v: { id: string }) => Promise<{ error?: unknown }>) => {
    const r = await fn({ id: w.id });
    if (!r.error) onChanged();
  };
  const busy = r1.fetching || r2.fetching || r3.fetching || r4.fetching;
  return (
    <Group gap={4} wrap="nowrap">
      <Button size="compact-xs" variant="default" onClick={onLogs} aria-label={`Logs of ${w.id}`}>Logs</Button>
      <Button size="compact-xs" variant="default" disabled={busy} onClick={() => run(restart)} aria-label={`Restart ${w.id}`}>Restart</Button>
      {w.quiet
        ? <Button size="compact-xs" variant="default" disabled={busy} onClick={() => run(resume)} aria-label={`Resume ${w.id}`}>Resume</Button>
        : <Button size="compact-xs" variant="default" disabled={busy} onClick={() => run(quiet)} aria-label={`Quiet ${w.id}`}>Quiet</Button>}
      <Button size="compact-xs" color="red" variant="light" disabled={busy} onClick={() => run(stop)} aria-label={`Stop ${w.id}`}>Stop</Button>
      <ErrorNote error={r1.error ?? r2.error ?? r3.error ?? r4.error} />
    </Group>
  );
}

function WorkerLogs({ id }: { id: string }) {
  const [{ data, error, fetching }, refetch] = useQuery({ query: WorkerLogsQuery, variables: { id, lines: 200 }, requestPolicy: "network-only" });
  const lines = data?.workerLogs ?? [];
  return (
    <Stack>
      <ErrorNote error={error} />
      <div tabIndex={0} role="region" aria-label={`Logs of ${id}`} style={{ maxHeight: 400, overflow: "auto" }}>
        <Code block aria-label={`Log lines of ${id}`}>{lines.length ? lines.join("\n") : fetching ? "…" : "No log lines yet (they arrive with each heartbeat)."}</Code>
      </div>
      <Group justify="flex-end"><Button variant="default" onClick={() => refetch({ requestPolicy: "network-only" })}>Reload</Button></Group>
    </Stack>
  );
}

function History() {
  const [{ data, error }] = useQuery({ query: WorkerGroupHistory, requestPolicy: "network-only" });
  const groups = data?.workerGroups ?? [];
  const option = useMemo(() => {
    const minutes = [...new Set(groups.flatMap((g) => g.history.map((p) => p.minute)))].sort();
    return {
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 40, right: 40, top: 30, bottom: 30 },
      xAxis: { type: "category", data: minutes.map((m) => new Date(m).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })) },
      yAxis: [{ type: "value", name: "workers", minInterval: 1 }, { type: "value", name: "crashes", minInterval: 1 }],
      series: groups.flatMap((g) => {
        const by = new Map(g.history.map((p) => [p.minute, p]));
        return [
          { name: `${g.name} workers`, type: "line", step: "end", data: minutes.map((m) => by.get(m)?.actual ?? null) },
          { name: `${g.name} crashes`, type: "bar", yAxisIndex: 1, data: minutes.map((m) => by.get(m)?.crashes ?? 0) },
        ];
      }),
    };
  }, [groups]);
  const crashes = groups.flatMap((g) => g.crashes.map((c) => ({ ...c, group: g.name })));
  return (
    <Stack>
      <Title order={2} size="h4">Worker count and crashes over time</Title>
      <ErrorNote error={error} />
      <EChart option={option} height={240} label="Live workers per group and crashes per minute over the last two hours" />
      {crashes.length > 0 && (
        <Table withTableBorder aria-label="Recent crashes">
          <Table.Thead><Table.Tr><Table.Th scope="col">Group</Table.Th><Table.Th scope="col">Worker</Table.Th><Table.Th scope="col">At</Table.Th><Table.Th scope="col">Exit</Table.Th><Table.Th scope="col">Detail</Table.Th></Table.Tr></Table.Thead>
          <Table.Tbody>
            {crashes.map((c) => (
              <Table.Tr key={c.workerId}>
                <Table.Td>{c.group}</Table.Td><Table.Th scope="row" style={{ fontFamily: "monospace" }}>{c.workerId}</Table.Th>
                <Table.Td>{new Date(c.at).toLocaleString()}</Table.Td><Table.Td>{c.exitCode ?? "—"}</Table.Td><Table.Td>{c.detail}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </Stack>
  );
}

/** ``history=false`` leaves out the canvas chart (tests: jsdom has no canvas). */
export function WorkersPage({ history = true }: { history?: boolean } = {}) {
  const [{ data, error }, refetch] = useQuery({ query: WorkersQuery });
  const reread = () => refetch({ requestPolicy: "network-only" });
  useLiveBatches(WorkerEventsSub, {}, reread, { minIntervalMs: 1000 });
  // CPU, memory and heartbeat age change with every heartbeat, which is not an event: re-read
  // every 5 s while the page is open.
  useEffect(() => {
    const t = setInterval(reread, 5000);
    return () => clearInterval(t);
  }, [refetch]); // eslint-disable-line react-hooks/exhaustive-deps
  const rows = data?.workers ?? [];
  const groups = data?.workerGroups ?? [];
  const samples = useRef<Samples>(new Map());
  useEffect(() => {
    for (const w of rows) {
      const s = samples.current.get(w.id) ?? { cpu: [], rss: [] };
      if (w.cpuPercent !== null && w.cpuPercent !== undefined) s.cpu = [...s.cpu, w.cpuPercent].slice(-SAMPLES);
      if (w.rssBytes !== null && w.rssBytes !== undefined) s.rss = [...s.rss, w.rssBytes].slice(-SAMPLES);
      samples.current.set(w.id, s);
    }
  }, [rows]);
  const [logsOf, setLogsOf] = useState<string | null>(null);
  const now = Date.now();
  return (
    <Page title="Workers">
      <ErrorNote error={error} />
      {groups.length > 0 && (
        <SimpleGrid cols={{ base: 1, sm: 2, lg: 3 }}>
          {groups.map((g) => <GroupCard key={g.name} g={g} onChanged={reread} />)}
        </SimpleGrid>
      )}
      {/* a plain scrolling box that takes focus: keyboard users can scroll it (axe:
          scrollable-region-focusable), which Mantine's ScrollContainer viewport does not */}
      <div tabIndex={0} role="region" aria-label="Workers table" style={{ overflowX: "auto" }}>
      <div style={{ minWidth: 1200 }}>
      <Table striped withTableBorder aria-label="Workers">
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">Worker</Table.Th>
            <Table.Th scope="col">Group</Table.Th>
            <Table.Th scope="col">Queues</Table.Th>
            <Table.Th scope="col">State</Table.Th>
            <Table.Th scope="col">Current jobs</Table.Th>
            <Table.Th scope="col" ta="right">Uptime</Table.Th>
            <Table.Th scope="col" ta="right">Processed</Table.Th>
            <Table.Th scope="col" ta="right">Failed</Table.Th>
            <Table.Th scope="col" ta="right" title="Process CPU between its last two heartbeats; 100% is one core">CPU</Table.Th>
            <Table.Th scope="col" ta="right" title="Resident memory of the worker process">Memory</Table.Th>
            <Table.Th scope="col">Host / pid</Table.Th>
            <Table.Th scope="col" ta="right">Heartbeat age</Table.Th>
            <Table.Th scope="col">Actions</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.map((w) => {
            const s = samples.current.get(w.id);
            const state = w.state ?? w.status;
            return (
              <Table.Tr key={w.id}>
                <Table.Th scope="row" style={{ fontFamily: "monospace" }}>{w.id}</Table.Th>
                <Table.Td>{w.group ?? "default"}</Table.Td>
                <Table.Td>{w.queues.length && !w.queues.includes("*") ? w.queues.join(", ") : "all queues"}</Table.Td>
                <Table.Td>
                  <Badge color={state === "busy" ? "yellow" : state === "idle" ? "green" : state === "draining" ? "orange" : "gray"}>{state}</Badge>{" "}
                  <Text span size="xs">{w.running}/{w.concurrency}</Text>
                  {w.command && <Text span size="xs" c="dimmed"> ({w.command} pending)</Text>}
                </Table.Td>
                <Table.Td>
                  {w.currentJobs.slice(0, 3).map((j) => <Link key={j} to={`/jobs/${j}`} style={{ marginRight: 6, fontFamily: "monospace" }}>{shortId(j)}</Link>)}
                  {w.currentJobs.length > 3 && `+${w.currentJobs.length - 3}`}
                </Table.Td>
                <Table.Td ta="right">{fmtMs(w.uptimeMs)}</Table.Td>
                <Table.Td ta="right">{fmtNum(w.processed)}</Table.Td>
                <Table.Td ta="right">{fmtNum(w.failed)}</Table.Td>
                <Table.Td ta="right">
                  {w.cpuPercent === null || w.cpuPercent === undefined ? "—" : `${w.cpuPercent.toFixed(0)}%`}{" "}
                  <Sparkline values={s?.cpu ?? []} max={100} label={`CPU of ${w.id} while this page is open`} />
                </Table.Td>
                <Table.Td ta="right">
                  {fmtBytes(w.rssBytes)}{" "}
                  <Sparkline values={s?.rss ?? []} label={`Memory of ${w.id} while this page is open`} />
                </Table.Td>
                <Table.Td>{w.host ?? "—"} / {w.pid ?? "—"}</Table.Td>
                <Table.Td ta="right">{w.lastSeenAt ? fmtMs(now - new Date(w.lastSeenAt).getTime()) : "—"}</Table.Td>
                <Table.Td><WorkerActions w={w} onChanged={reread} onLogs={() => setLogsOf(w.id)} /></Table.Td>
              </Table.Tr>
            );
          })}
        </Table.Tbody>
      </Table>
      </div>
      </div>
      {rows.length === 0 && <Text c="dimmed">No live workers.</Text>}
      <Text size="sm" c="dimmed">CPU and memory are the worker process's, from its heartbeats (re-read every 5 s; the sparklines show the samples since this page opened). Restart, stop and − are warm: a worker finishes or hands back its jobs first.</Text>
      {history && <History />}
      <Modal opened={logsOf !== null} onClose={() => setLogsOf(null)} title={`Logs of ${logsOf ?? ""}`} size="xl">
        {logsOf && <WorkerLogs id={logsOf} />}
      </Modal>
    </Page>
  );
}
