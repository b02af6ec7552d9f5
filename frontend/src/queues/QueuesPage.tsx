import { lazy, Suspense, useEffect, useMemo, useRef, useState } from "react";
import { Badge, Button, Group, Modal, NumberInput, Stack, Table, Text, Tooltip } from "@mantine/core";
import { Link, useNavigate, useParams } from "react-router";
import { useMutation, useQuery } from "urql";
import { useSession } from "../auth/session";
import { JobEventPulseSub } from "../live/documents";
import { useLiveBatches } from "../live/useLive";
import { ErrorNote } from "../ui/Errors";
import { fmtMs, fmtNum } from "../ui/format";
import { Page } from "../ui/Page";
import {
  PauseQueue, QueueCountsQuery, QueueMetricsQuery, QueueTodayQuery, ResumeQueue, SetConcurrency, SetRateLimit,
  UnservedJobTypesQuery,
} from "./documents";
import { UnservedMarker, UnservedNotice, unservedOf } from "./Unserved";
import { healthOf, startOfToday } from "./health";

// The capacity drawer draws with ECharts: its chunk loads on first open, like the other chart pages.
const CapacityDrawer = lazy(() => import("./Capacity"));

function TodayCells({ queue, tick }: { queue: string; tick: number }) {
  const from = useMemo(() => startOfToday(), []);
  const [{ data }, refetch] = useQuery({ query: QueueTodayQuery, variables: { queue, from } });
  useEffect(() => {
    if (tick) refetch({ requestPolicy: "network-only" });
  }, [tick, refetch]);
  const sum = (k: "completed" | "failed") => data?.throughputSeries.reduce((a, p) => a + p[k], 0);
  return (
    <>
      <Table.Td ta="right">{fmtNum(sum("completed"))}</Table.Td>
      <Table.Td ta="right">{fmtNum(sum("failed"))}</Table.Td>
    </>
  );
}

interface LimitsTarget {
  name: string;
  maxInFlight: number | null | undefined;
  rateLimit: { limit: number; windowMs: number } | null | undefined;
}

function LimitsDialog({ target, onClose }: { target: LimitsTarget; onClose: () => void }) {
  const [limit, setLimit] = useState<string | number>(target.rateLimit?.limit ?? "");
  const [windowMs, setWindowMs] = useState<string | number>(target.rateLimit?.windowMs ?? 1000);
  const [cap, setCap] = useState<string | number>(target.maxInFlight ?? "");
  const [rl, setRl] = useMutation(SetRateLimit);
  const [cc, setCc] = useMutation(SetConcurrency);
  async function save() {
    const a = await setRl({ queue: target.name, limit: limit === "" ? null : Number(limit), windowMs: Number(windowMs) || 1000 });
    const b = await setCc({ queue: target.name, maxInFlight: cap === "" ? null : Number(cap) });
    if (!a.error && !b.error) onClose();
  }
  return (
    <Modal opened onClose={onClose} title={`Limits for queue ${target.name}`}>
      <Stack>
        <Group grow>
          <NumberInput label="Rate limit (jobs per window)" description="Empty removes it" value={limit} onChange={setLimit} min={1} />
          <NumberInput label="Window (ms)" value={windowMs} onChange={setWindowMs} min={1} />
        </Group>
        <NumberInput label="Concurrency cap (max in flight)" description="Empty removes it" value={cap} onChange={setCap} min={1} />
        <ErrorNote error={rl.error ?? cc.error} />
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>Cancel</Button>
          <Button onClick={save} loading={rl.fetching || cc.fetching}>Save limits</Button>
        </Group>
      </Stack>
    </Modal>
  );
}

function AdminQueues() {
  const [tick, setTick] = useState(0);
  const [metrics, refetchMetrics] = useQuery({ query: QueueMetricsQuery });
  const [counts, refetchCounts] = useQuery({ query: QueueCountsQuery });
  const [jobTypes, refetchJobTypes] = useQuery({ query: UnservedJobTypesQuery });
  const [, pause] = useMutation(PauseQueue);
  const [, resume] = useMutation(ResumeQueue);
  const [limits, setLimits] = useState<LimitsTarget | null>(null);
  // Live: any job event re-reads the (Redis + rollup) metrics at most once a second; the
  // GROUP BY counts at most every 5 s.
  // One batched subscription selecting only the count (cheap for the API under a flood).
  const lastCounts = useRef(0);
  useLiveBatches(JobEventPulseSub, {}, () => {
    refetchMetrics({ requestPolicy: "network-only" });
    if (Date.now() - lastCounts.current >= 5000) {
      lastCounts.current = Date.now();
      refetchCounts({ requestPolicy: "network-only" });
      refetchJobTypes({ requestPolicy: "network-only" });
      setTick((t) => t + 1);
    }
  }, { minIntervalMs: 1000 });

  const byName = new Map(counts.data?.queues.map((q) => [q.name, q]) ?? []);
  const workers = metrics.data?.workers ?? [];
  const rows = metrics.data?.queueMetrics ?? [];
  const unserved = unservedOf(jobTypes.data?.jobTypes);
  return (
    <>
      <ErrorNote error={metrics.error} />
      <UnservedNotice types={unserved} />
      <Table striped highlightOnHover withTableBorder aria-label="Queues" data-loaded={counts.data ? "counts" : metrics.data ? "metrics" : "none"}>
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">Queue</Table.Th>
            <Table.Th scope="col">Health</Table.Th>
            <Table.Th scope="col" ta="right">Pending</Table.Th>
            <Table.Th scope="col" ta="right">Processing</Table.Th>
            <Table.Th scope="col" ta="right">Completed today</Table.Th>
            <Table.Th scope="col" ta="right">Failed today</Table.Th>
            <Table.Th scope="col" ta="right">Avg duration</Table.Th>
            <Table.Th scope="col" ta="right">Active workers</Table.Th>
            <Table.Th scope="col">Limits</Table.Th>
            <Table.Th scope="col">Actions</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.map((q) => {
            const h = healthOf(q.health);
            const c = byName.get(q.name)?.counts;
            const active = workers.filter((w) => w.queues.length === 0 || w.queues.includes(q.name) || w.queues.includes("*")).length;
            return (
              <Table.Tr key={q.name} data-queue={q.name}>
                <Table.Th scope="row" style={{ whiteSpace: "nowrap" }}>{q.name}</Table.Th>
                <Table.Td style={{ whiteSpace: "nowrap" }}>
                  <Tooltip label={h.rule} multiline w={260} withArrow>
                    <Badge color={h.color} tabIndex={0} style={{ overflow: "visible" }} styles={{ label: { overflow: "visible" } }} aria-label={`${q.health}: ${h.rule}`}>{q.health}</Badge>
                  </Tooltip>
                  <UnservedMarker queue={q.name} types={unserved} />
                </Table.Td>
                <Table.Td ta="right" data-col="pending">{fmtNum(c ? c.pending : q.ready)}</Table.Td>
                <Table.Td ta="right" data-col="processing">{fmtNum(c ? c.processing : q.leased)}</Table.Td>
                <TodayCells queue={q.name} tick={tick} />
                <Table.Td ta="right">{fmtMs(q.avgDurationMs)}</Table.Td>
                <Table.Td ta="right">{active}</Table.Td>
                <Table.Td>
                  <Text size="sm">
                    {q.rateLimit ? `${q.rateLimit.limit}/${q.rateLimit.windowMs} ms` : "no rate limit"}
                    {" · "}
                    {q.maxInFlight ? `cap ${q.maxInFlight}` : "no cap"}
                  </Text>
                </Table.Td>
                <Table.Td>
                  <Group gap={6} wrap="nowrap">
                    {q.paused ? (
                      <Button size="xs" color="green" onClick={async () => { await resume({ queue: q.name }); refetchMetrics({ requestPolicy: "network-only" }); }}>
                        Resume {q.name}
                      </Button>
                    ) : (
                      <Button size="xs" color="yellow" variant="light" onClick={async () => { await pause({ queue: q.name }); refetchMetrics({ requestPolicy: "network-only" }); }}>
                        Pause {q.name}
                      </Button>
                    )}
                    <Button size="xs" variant="default" onClick={() => setLimits(q)}>Limits…</Button>
                    <Button size="xs" variant="light" component={Link} to={`/queues/${encodeURIComponent(q.name)}/capacity`} aria-label={`Capacity of ${q.name}`}>
                      Capacity
                    </Button>
                  </Group>
                </Table.Td>
              </Table.Tr>
            );
          })}
        </Table.Tbody>
      </Table>
      {!metrics.fetching && rows.length === 0 && <Text c="dimmed">No queues yet: submit a job.</Text>}
      {limits && <LimitsDialog target={limits} onClose={() => { setLimits(null); refetchMetrics({ requestPolicy: "network-only" }); }} />}
    </>
  );
}

function DeveloperQueues() {
  const [counts, refetch] = useQuery({ query: QueueCountsQuery });
  const [jobTypes, refetchJobTypes] = useQuery({ query: UnservedJobTypesQuery });
  // Job types (a Redis read of the workers, plus a capped count only for unserved types) at
  // most every 5 s, like the admin view's counts.
  const lastTypes = useRef(0);
  useLiveBatches(JobEventPulseSub, {}, () => {
    refetch({ requestPolicy: "network-only" });
    if (Date.now() - lastTypes.current >= 5000) {
      lastTypes.current = Date.now();
      refetchJobTypes({ requestPolicy: "network-only" });
    }
  }, { minIntervalMs: 2000 });
  const rows = counts.data?.queues ?? [];
  const unserved = unservedOf(jobTypes.data?.jobTypes);
  return (
    <>
      <ErrorNote error={counts.error} />
      <UnservedNotice types={unserved} />
      <Table striped withTableBorder aria-label="Queues">
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">Queue</Table.Th>
            <Table.Th scope="col">State</Table.Th>
            <Table.Th scope="col" ta="right">Pending</Table.Th>
            <Table.Th scope="col" ta="right">Processing</Table.Th>
            <Table.Th scope="col" ta="right">Completed</Table.Th>
            <Table.Th scope="col" ta="right">Failed</Table.Th>
            <Table.Th scope="col" ta="right">Dead letters</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.map((q) => (
            <Table.Tr key={q.name} data-queue={q.name}>
              <Table.Th scope="row">{q.name}</Table.Th>
              <Table.Td>{q.controls.paused ? <Badge color="yellow">paused</Badge> : <Badge color="green">running</Badge>}<UnservedMarker queue={q.name} types={unserved} /></Table.Td>
              <Table.Td ta="right" data-col="pending">{fmtNum(q.counts.pending)}</Table.Td>
              <Table.Td ta="right" data-col="processing">{fmtNum(q.counts.processing)}</Table.Td>
              <Table.Td ta="right">{fmtNum(q.counts.completed)}</Table.Td>
              <Table.Td ta="right">{fmtNum(q.counts.failed)}</Table.Td>
              <Table.Td ta="right">{fmtNum(q.counts.deadLetter)}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <Text size="sm" c="dimmed">Health, today's figures and queue controls need an admin key.</Text>
    </>
  );
}

export function QueuesPage() {
  const { isAdmin } = useSession();
  const { queue } = useParams();
  const navigate = useNavigate();
  return (
    <Page title="Queues">
      {isAdmin ? <AdminQueues /> : <DeveloperQueues />}
      {/* /queues/:queue/capacity: forecasts and scaling advice are admin-only on the server */}
      {isAdmin && queue && (
        <Suspense fallback={null}>
          <CapacityDrawer queue={queue} onClose={() => navigate("/queues")} />
        </Suspense>
      )}
    </Page>
  );
}
