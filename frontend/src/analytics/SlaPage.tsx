import { useMemo, useState, type FormEvent } from "react";
import { Autocomplete, Badge, Button, Group, NumberInput, Paper, Select, Stack, Text, Title } from "@mantine/core";
import { useMutation, useQuery } from "urql";
import { SetQueueSla, SlaQuery } from "./documents";
import { variablesOf } from "./range";
import { AnalyticsFrame, ChartFigure, DataTable, fmtCount, fmtDuration, fmtPct, lineOption, useDataMark, useView } from "./ui";

/** "95% within 5 min (end to end)". */
export function slaText(s: { objective: number; targetMs: number; metric: string }): string {
  const pct = Number((s.objective * 100).toFixed(3));
  return `${pct}% within ${fmtDuration(s.targetMs)} (${s.metric === "wait" ? "wait" : "end to end"})`;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, min: 60_000, h: 3_600_000 };

export interface SlaFields { queue: string; objectivePct: number | string; target: number | string; unit: string; metric: string }

/** The SLA form's checks; an empty object when it may be sent. */
export function slaErrors(f: SlaFields): Partial<Record<"queue" | "objectivePct" | "target", string>> {
  const e: Partial<Record<"queue" | "objectivePct" | "target", string>> = {};
  if (!f.queue.trim()) e.queue = "Enter a queue name.";
  const o = typeof f.objectivePct === "number" ? f.objectivePct : Number.NaN;
  if (!Number.isFinite(o) || o <= 0 || o >= 100) e.objectivePct = "The objective is a percentage above 0 and below 100.";
  const t = typeof f.target === "number" ? f.target : Number.NaN;
  if (!Number.isFinite(t) || t <= 0) e.target = "The target must be above zero.";
  return e;
}

/** The mutation's variables: "95 % within 5 min" -> objective 0.95, targetMs 300000. */
export function slaVariables(f: SlaFields) {
  return { queue: f.queue.trim(), objective: Number((Number(f.objectivePct) / 100).toFixed(6)), targetMs: Math.round(Number(f.target) * UNITS[f.unit]), metric: f.metric };
}

function SlaForm({ queues, initialQueue, onSaved }: { queues: string[]; initialQueue: string; onSaved: () => void }) {
  const [f, setF] = useState<SlaFields>({ queue: initialQueue, objectivePct: 95, target: 5, unit: "min", metric: "e2e" });
  const set = <K extends keyof SlaFields>(k: K, v: SlaFields[K]) => setF((o) => ({ ...o, [k]: v }));
  const [errors, setErrors] = useState<ReturnType<typeof slaErrors>>({});
  const [saved, setSaved] = useState<string | null>(null);
  const [state, save] = useMutation(SetQueueSla);
  async function submit(e: FormEvent) {
    e.preventDefault();
    const errs = slaErrors(f);
    setErrors(errs);
    setSaved(null);
    if (Object.keys(errs).length) return;
    const v = slaVariables(f);
    const r = await save(v);
    if (!r.error) {
      setSaved(`${v.queue}: ${slaText(v)}.`);
      onSaved();
    }
  }
  return (
    <Paper withBorder p="sm" component="section" aria-labelledby="sla-form">
      <Title order={2} size="h4" id="sla-form">Set a queue's SLA</Title>
      <form onSubmit={submit} aria-label="Set a queue's SLA" noValidate>
        <Group align="flex-start" mt="xs">
          <Autocomplete label="Queue" data={queues} value={f.queue} onChange={(v) => set("queue", v)} error={errors.queue} required w={200} />
          <NumberInput label="Objective (%)" value={f.objectivePct} onChange={(v) => set("objectivePct", v)} min={0} max={100} decimalScale={3} error={errors.objectivePct} required w={140} />
          <NumberInput label="Within" value={f.target} onChange={(v) => set("target", v)} min={0} decimalScale={3} error={errors.target} required w={110} />
          <Select label="Unit" data={Object.keys(UNITS)} value={f.unit} onChange={(v) => set("unit", v ?? "min")} allowDeselect={false} w={90} />
          <Select label="Measured on" value={f.metric} onChange={(v) => set("metric", v ?? "e2e")} allowDeselect={false} w={170}
            data={[{ value: "e2e", label: "end to end" }, { value: "wait", label: "wait (due → start)" }]} />
          <Button type="submit" mt={24} loading={state.fetching}>Save SLA</Button>
        </Group>
      </form>
      {state.error && <Text role="alert" c="red" size="sm" mt="xs">{state.error.graphQLErrors.map((x) => x.message).join("; ") || state.error.message}</Text>}
      {saved && <Text role="status" c="teal" size="sm" mt="xs">Saved — {saved}</Text>}
    </Paper>
  );
}

/** SLA: each queue's objective, compliance over the range, violations and the compliance trend. */
export default function SlaPage() {
  const [view, , update] = useView();
  const [{ data, fetching, error }, refetch] = useQuery({ query: SlaQuery, variables: variablesOf(view), pause: !!view.invalid });
  const sla = data?.analytics.sla;
  useDataMark("sla", !!sla);
  const trend = useMemo(() => lineOption((sla ?? []).map((s) => ({ name: s.queue, data: s.trend.map((p): [number, number | null] => [Date.parse(p.at), p.compliance ?? null]) })),
    "compliance", (v) => fmtPct(v, 1), { yAxis: { type: "value", name: "compliance", max: 1, axisLabel: { formatter: (v: number) => fmtPct(v, 0) } } }), [sla]);
  return (
    <Stack>
      <AnalyticsFrame title="SLA" view={view} update={update} filters="queue" fetching={fetching && !data} error={error} empty={!!sla && sla.length === 0}
        emptyText="No queue has an SLA yet: set one below.">
        {sla && (
          <Stack>
            <DataTable caption="SLA compliance by queue" rows={sla} rowKey={(s) => s.queue}
              columns={[
                { label: "Queue", value: (s) => s.queue },
                { label: "Objective", value: (s) => slaText(s) },
                { label: "Compliance", value: (s) => fmtPct(s.compliance, 2), numeric: true },
                { label: "Status", value: (s) => (s.met === null || s.met === undefined
                  ? <Badge color="gray" variant="light">no data</Badge>
                  : <Badge color={s.met ? "green" : "red"} variant="light">{s.met ? "met" : "missed"}</Badge>) },
                { label: "Violations", value: (s) => fmtCount(s.violations), numeric: true },
              ]} />
            <ChartFigure title="Compliance trend" label="Line chart: share of jobs within their queue's SLA target over time" option={trend}
              empty={sla.every((s) => s.trend.length === 0) ? "No job finished in this range." : null} />
          </Stack>
        )}
      </AnalyticsFrame>
      <SlaForm queues={(sla ?? []).map((s) => s.queue)} initialQueue={view.queue ?? ""} onSaved={() => refetch({ requestPolicy: "network-only" })} />
    </Stack>
  );
}
