import { useMemo, useState, type FormEvent } from "react";
import {
  Badge, Box, Button, Drawer, Group, List, Loader, NumberInput, Paper, SegmentedControl, SimpleGrid, Stack, Table, Text, Title,
} from "@mantine/core";
import type { EChartsCoreOption } from "echarts/core";
import { useQuery } from "urql";
import { EChart } from "../charts/EChart";
import { AiNotice } from "../ui/AiNotice";
import { fmtMs, fmtNum } from "../ui/format";
import { ForecastQuery, ScalingQuery } from "./documents";
import type { QueueForecastQuery } from "../gql/graphql";

type Forecast = QueueForecastQuery["forecast"];

const MODEL_NAMES: Record<string, string> = { prophet: "Prophet", seasonalNaive: "seasonal naive" };
const modelName = (m: string) => MODEL_NAMES[m] ?? m;
const fmtMase = (v: number | null | undefined) => (v === null || v === undefined ? "—" : v.toFixed(3));
// small sums keep a third decimal: a day of a quiet queue costs cents
const money = (v: number | null | undefined) => (v === null || v === undefined ? "—" : `$${v.toFixed(Math.abs(v) < 1 ? 3 : 2)}`);

function hourLabel(iso: string): string {
  const d = new Date(iso);
  return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false });
}

/** Hourly submissions with the 80% interval as a band: a transparent "lower" line with the
 *  band's height stacked on it (ECharts draws bands this way). */
export function forecastOption(f: Forecast): EChartsCoreOption {
  const x = f.points.map((p) => hourLabel(p.at));
  return {
    grid: { left: 48, right: 16, top: 32, bottom: 56 },
    tooltip: {
      trigger: "axis",
      formatter: (items: { dataIndex: number }[]) => {
        const p = f.points[items[0]?.dataIndex ?? 0];
        return p ? `${x[items[0].dataIndex]}<br/>forecast ${p.jobs.toFixed(1)} jobs/h<br/>80% interval ${p.lower.toFixed(1)}–${p.upper.toFixed(1)}` : "";
      },
    },
    legend: { data: ["forecast", "80% interval"], top: 0 },
    xAxis: { type: "category", data: x, boundaryGap: false, axisLabel: { hideOverlap: true } },
    yAxis: { type: "value", name: "jobs / hour", nameTextStyle: { align: "left" } },
    dataZoom: [{ type: "inside" }, { type: "slider", height: 18, bottom: 8 }],
    series: [
      { name: "lower", type: "line", stack: "band", data: f.points.map((p) => p.lower), symbol: "none", lineStyle: { opacity: 0 }, silent: true, tooltip: { show: false } },
      { name: "80% interval", type: "line", stack: "band", data: f.points.map((p) => p.upper - p.lower), symbol: "none", lineStyle: { opacity: 0 }, areaStyle: { color: "#4dabf7", opacity: 0.3 }, color: "#74c0fc", silent: true },
      { name: "forecast", type: "line", data: f.points.map((p) => p.jobs), symbol: "none", color: "#1971c2", lineStyle: { width: 2 } },
    ],
  };
}

function ForecastPanel({ queue }: { queue: string }) {
  const [horizon, setHorizon] = useState("7");
  const [res] = useQuery({ query: ForecastQuery, variables: { queue, horizonDays: Number(horizon) } });
  const f = res.data?.forecast;
  const option = useMemo(() => (f ? forecastOption(f) : null), [f]);
  return (
    <Paper withBorder p="sm" component="section" aria-labelledby="capacity-forecast">
      <Group justify="space-between" mb="xs">
        <Title order={3} size="h4" id="capacity-forecast">Forecast</Title>
        <SegmentedControl size="xs" aria-label="Forecast horizon" value={horizon} onChange={setHorizon}
          data={[{ value: "7", label: "7 days" }, { value: "30", label: "30 days" }]} />
      </Group>
      {res.fetching && !f && <Group gap="xs"><Loader size="sm" aria-label="Forecasting" /><Text size="sm" c="dimmed">Fitting Prophet on the queue's history…</Text></Group>}
      <AiNotice error={res.error} />
      {f && option && !res.error && (
        <Stack gap="sm">
          <Text size="sm" c="dimmed">
            Hourly submissions forecast by {modelName(f.model)} from {fmtNum(f.historyHours)} hours of history, next {f.horizonDays} days.
          </Text>
          <EChart option={option} height={280} label={`Forecast of hourly submissions to ${f.queue} for the next ${f.horizonDays} days, with its 80% interval`} />
          <Box>
            <Table withTableBorder aria-label="Forecast backtest" w="auto" verticalSpacing={4}>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th scope="col">Backtest (newest {f.backtest.holdoutHours} h, season {f.backtest.seasonHours} h)</Table.Th>
                  <Table.Th scope="col" ta="right">MASE</Table.Th>
                  <Table.Th scope="col">Capacity numbers</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {(["prophet", "seasonalNaive"] as const).map((m) => (
                  <Table.Tr key={m}>
                    <Table.Th scope="row">{modelName(m)}</Table.Th>
                    <Table.Td ta="right">{fmtMase(m === "prophet" ? f.backtest.maseProphet : f.backtest.maseSeasonalNaive)}</Table.Td>
                    <Table.Td>{f.capacityModel === m ? <Badge color="blue" variant="light">used</Badge> : <Text size="xs" c="dimmed">not used</Text>}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
            <Text size="xs" c="dimmed" mt={4}>Lower MASE is better; below 1 beats the naive in-sample forecast. The better model sizes the workers and cost below.</Text>
          </Box>
          <Table striped withTableBorder aria-label="Workers needed per day" verticalSpacing={4}>
            <Table.Thead>
              <Table.Tr>
                <Table.Th scope="col">Day</Table.Th>
                <Table.Th scope="col" ta="right">Jobs</Table.Th>
                <Table.Th scope="col" ta="right">80% interval</Table.Th>
                <Table.Th scope="col" ta="right">Peak jobs/h</Table.Th>
                <Table.Th scope="col" ta="right">Workers needed</Table.Th>
                <Table.Th scope="col" ta="right">Busy worker-hours</Table.Th>
                <Table.Th scope="col" ta="right">Cost</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {f.days.map((d) => (
                <Table.Tr key={d.date}>
                  <Table.Th scope="row">{d.date}</Table.Th>
                  <Table.Td ta="right">{fmtNum(Math.round(d.jobs))}</Table.Td>
                  <Table.Td ta="right">{fmtNum(Math.round(d.lower))}–{fmtNum(Math.round(d.upper))}</Table.Td>
                  <Table.Td ta="right">{d.peakJobsPerHour.toFixed(1)}</Table.Td>
                  <Table.Td ta="right">{fmtNum(d.workersNeeded)}</Table.Td>
                  <Table.Td ta="right">{d.busyWorkerHours === null || d.busyWorkerHours === undefined ? "—" : d.busyWorkerHours.toFixed(2)}</Table.Td>
                  <Table.Td ta="right">{money(d.cost)}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          <Text size="sm" aria-label="Cost projection">
            Cost projection: <b>{money(f.totalCost)}</b> over {f.horizonDays} days at {money(f.pricePerWorkerHour)} per busy worker-hour
            {" · "}mean job {fmtMs(f.meanDurationMs)} · wait target {fmtMs(f.waitTargetMs)} ({f.targetSource})
          </Text>
        </Stack>
      )}
    </Paper>
  );
}

type Num = string | number;
const opt = (v: Num) => (v === "" ? null : Number(v));

interface Asked {
  queue: string;
  targetLatencyMs: number;
  pendingJobs: number | null;
  averageJobDurationMs: number | null;
  currentWorkers: number | null;
}

function ScalingAdvice({ queue }: { queue: string }) {
  const [target, setTarget] = useState<Num>(30_000);
  const [pending, setPending] = useState<Num>("");
  const [duration, setDuration] = useState<Num>("");
  const [workers, setWorkers] = useState<Num>("");
  const [asked, setAsked] = useState<Asked | null>(null);
  const [res, reexecute] = useQuery({
    query: ScalingQuery,
    variables: asked ?? { queue, targetLatencyMs: 1 },
    pause: !asked,
    requestPolicy: "network-only",
  });
  function onSubmit(e: FormEvent) {
    e.preventDefault();
    const next: Asked = {
      queue, targetLatencyMs: Number(target), pendingJobs: opt(pending), averageJobDurationMs: opt(duration), currentWorkers: opt(workers),
    };
    if (asked && JSON.stringify(asked) === JSON.stringify(next)) reexecute({ requestPolicy: "network-only" });
    else setAsked(next);
  }
  const r = asked ? res.data?.scalingRecommendation : undefined;
  return (
    <Paper withBorder p="sm" component="section" aria-labelledby="capacity-scaling">
      <Title order={3} size="h4" id="capacity-scaling" mb="xs">Scaling advice</Title>
      <form onSubmit={onSubmit} aria-label={`Scaling advice for ${queue}`}>
        <Stack gap="xs">
          <SimpleGrid cols={{ base: 2, sm: 4 }}>
            <NumberInput label="Target latency (ms)" value={target} onChange={setTarget} min={1} max={86_400_000} required />
            <NumberInput label="Pending jobs" description="empty: measured" value={pending} onChange={setPending} min={0} />
            <NumberInput label="Avg duration (ms)" description="empty: measured" value={duration} onChange={setDuration} min={1} />
            <NumberInput label="Current workers" description="empty: measured" value={workers} onChange={setWorkers} min={0} />
          </SimpleGrid>
          <Group>
            <Button type="submit" loading={!!asked && res.fetching}>Get scaling advice</Button>
          </Group>
        </Stack>
      </form>
      <Box role="status" aria-label="Scaling recommendation" aria-live="polite" mt="xs">
        {asked && <AiNotice error={res.error} />}
        {r && !res.error && (
          <Stack gap={6}>
            <Group gap="xl">
              <div>
                <Text size="xs" c="dimmed">Suggested workers</Text>
                <Text fz="xl" fw={700} data-testid="suggested-workers">{fmtNum(r.suggestedWorkers)}</Text>
              </div>
              <div>
                <Text size="xs" c="dimmed">Expected wait</Text>
                <Text fz="xl" fw={700}>{r.expectedWaitMs === null || r.expectedWaitMs === undefined ? "unbounded" : fmtMs(r.expectedWaitMs)}</Text>
              </div>
              <div>
                <Text size="xs" c="dimmed">Current workers</Text>
                <Text fz="xl" fw={700}>{fmtNum(r.currentWorkers)}</Text>
              </div>
              {r.suggestedProcesses !== null && r.suggestedProcesses !== undefined && (
                <div>
                  <Text size="xs" c="dimmed">Processes</Text>
                  <Text fz="xl" fw={700}>{fmtNum(r.suggestedProcesses)} × {fmtNum(r.slotsPerProcess)} slots</Text>
                </div>
              )}
            </Group>
            <Text size="sm" fw={600} id="scaling-reasoning">Reasoning</Text>
            <List size="sm" aria-labelledby="scaling-reasoning">
              {r.reasoning.map((line) => <List.Item key={line}>{line}</List.Item>)}
            </List>
            <Text size="xs" c="dimmed">
              Inputs: {r.inputs.arrivalsPerMinute.toFixed(2)} arrivals/min ({r.inputs.arrivalsSource}) · mean job {fmtMs(r.inputs.averageJobDurationMs)} ({r.inputs.durationSource})
              {" · "}{fmtNum(r.inputs.pendingJobs)} pending ({r.inputs.pendingSource}) · service level {(r.inputs.serviceLevel * 100).toFixed(0)}%
            </Text>
          </Stack>
        )}
      </Box>
    </Paper>
  );
}

/** A queue's capacity: the forecast with its backtest, workers and cost per day, and scaling
 *  advice for a wait target. */
export function CapacityView({ queue }: { queue: string }) {
  return (
    <Stack>
      <ForecastPanel queue={queue} />
      <ScalingAdvice queue={queue} />
    </Stack>
  );
}

export default function CapacityDrawer({ queue, onClose }: { queue: string; onClose: () => void }) {
  return (
    <Drawer opened onClose={onClose} position="right" size="min(1000px, 100%)" title={`Capacity of ${queue}`} styles={{ title: { fontSize: "var(--mantine-h3-font-size)", fontWeight: 700 } }}>
      <CapacityView queue={queue} />
    </Drawer>
  );
}
