import { useMemo, useState, type FormEvent } from "react";
import { Autocomplete, Button, Group, NumberInput, Paper, SegmentedControl, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { useMutation, useQuery } from "urql";
import { CostQuery, SetQueueCost } from "./documents";
import { variablesOf } from "./range";
import { AnalyticsFrame, barOption, ChartFigure, COLORS, DataTable, Figure, fmtBytes, fmtCount, fmtMoney, useDataMark, useView } from "./ui";

/** The price form's checks; an empty object when it may be sent. */
export function costErrors(queue: string, price: number | string): { queue?: string; price?: string } {
  const e: { queue?: string; price?: string } = {};
  if (!queue.trim()) e.queue = "Enter a queue name.";
  const p = typeof price === "number" ? price : Number.NaN;
  if (price === "" || !Number.isFinite(p)) e.price = "Enter a price per worker-hour.";
  else if (p < 0) e.price = "The price cannot be negative.";
  return e;
}

function PriceForm({ queues, initialQueue, onSaved }: { queues: string[]; initialQueue: string; onSaved: () => void }) {
  const [queue, setQueue] = useState(initialQueue);
  const [price, setPrice] = useState<number | string>("");
  const [errors, setErrors] = useState<ReturnType<typeof costErrors>>({});
  const [saved, setSaved] = useState<string | null>(null);
  const [state, save] = useMutation(SetQueueCost);
  async function submit(e: FormEvent) {
    e.preventDefault();
    const errs = costErrors(queue, price);
    setErrors(errs);
    setSaved(null);
    if (Object.keys(errs).length) return;
    const r = await save({ queue: queue.trim(), pricePerWorkerHour: Number(price) });
    if (!r.error) {
      setSaved(`${queue.trim()} now costs ${fmtMoney(Number(price))} per worker-hour.`);
      onSaved();
    }
  }
  return (
    <Paper withBorder p="sm" component="section" aria-labelledby="price-form">
      <Title order={2} size="h4" id="price-form">Price per worker-hour</Title>
      <form onSubmit={submit} aria-label="Set a queue's price" noValidate>
        <Group align="flex-start" mt="xs">
          <Autocomplete label="Queue" data={queues} value={queue} onChange={setQueue} error={errors.queue} required w={220} />
          <NumberInput label="Price per worker-hour (USD)" value={price} onChange={setPrice} min={0} decimalScale={4} step={0.01} error={errors.price} required w={260} />
          <Button type="submit" mt={24} loading={state.fetching}>Save price</Button>
        </Group>
      </form>
      {state.error && <Text role="alert" c="red" size="sm" mt="xs">{state.error.graphQLErrors.map((x) => x.message).join("; ") || state.error.message}</Text>}
      {saved && <Text role="status" c="teal" size="sm" mt="xs">{saved}</Text>}
    </Paper>
  );
}

/** Cost: worker-hours and money by queue or job type, the most expensive types, a monthly
 * projection and storage growth; each queue's price is set here. */
export default function CostPage() {
  const [view, params, update] = useView();
  const groupBy = params.get("groupBy") === "jobType" ? "jobType" : "queue";
  const [{ data, fetching, error }, refetch] = useQuery({ query: CostQuery, variables: { ...variablesOf(view), groupBy }, pause: !!view.invalid });
  const c = data?.analytics.cost;
  const empty = !!c && c.rows.length === 0 && c.totalCost === 0;
  useDataMark("cost", !!c);
  const chart = useMemo(() => barOption((c?.mostExpensiveJobTypes ?? []).slice(0, 10).map((r) => r.key),
    [{ name: "cost", data: (c?.mostExpensiveJobTypes ?? []).slice(0, 10).map((r) => r.cost), color: COLORS.warn }], "USD", { horizontal: true, yFormat: fmtMoney }), [c]);
  const groupLabel = groupBy === "queue" ? "Queue" : "Job type";
  return (
    <Stack>
      <AnalyticsFrame title="Cost" view={view} update={update} fetching={fetching && !data} error={error} empty={empty}
        emptyText="No worker time was spent in this range.">
        {c && (
          <Stack>
            <SimpleGrid cols={{ base: 2, md: 4 }}>
              <Figure label="Cost in range" value={fmtMoney(c.totalCost)} />
              <Figure label="Projected monthly cost" value={fmtMoney(c.projectedMonthlyCost)} hint="at this range's rate" />
              <Figure label="Storage growth" value={c.storageGrowthBytesPerDay === null || c.storageGrowthBytesPerDay === undefined ? "—" : `${fmtBytes(c.storageGrowthBytesPerDay)}/day`} />
              <Figure label="Default price" value={`${fmtMoney(c.defaultPricePerWorkerHour)}/h`} hint="queues without their own price" />
            </SimpleGrid>
            <Group gap="xs">
              <Text size="sm" id="cost-group-label">Group by</Text>
              <SegmentedControl aria-labelledby="cost-group-label" size="xs" value={groupBy}
                data={[{ value: "queue", label: "Queue" }, { value: "jobType", label: "Job type" }]}
                onChange={(v) => update({ groupBy: v === "jobType" ? "jobType" : null })} />
            </Group>
            <DataTable caption={`Cost by ${groupLabel.toLowerCase()}`} rows={c.rows} rowKey={(r) => r.key}
              columns={[
                { label: groupLabel, value: (r) => r.key },
                { label: "Jobs", value: (r) => fmtCount(r.jobs), numeric: true },
                { label: "Worker-hours", value: (r) => r.workerHours.toFixed(2), numeric: true },
                { label: "Cost", value: (r) => fmtMoney(r.cost), numeric: true },
                { label: "Cost per job", value: (r) => fmtMoney(r.costPerJob), numeric: true },
              ]} />
            <ChartFigure title="Most expensive job types" label="Bar chart: cost by job type, the most expensive first" option={chart}
              empty={c.mostExpensiveJobTypes.length === 0 ? "No job type ran in this range." : null}
              table={{ rows: c.mostExpensiveJobTypes, rowKey: (r) => r.key, columns: [
                { label: "Job type", value: (r) => r.key },
                { label: "Worker-hours", value: (r) => r.workerHours.toFixed(2), numeric: true },
                { label: "Cost", value: (r) => fmtMoney(r.cost), numeric: true },
                { label: "Cost per job", value: (r) => fmtMoney(r.costPerJob), numeric: true },
              ] }} />
          </Stack>
        )}
      </AnalyticsFrame>
      <PriceForm queues={groupBy === "queue" ? (c?.rows ?? []).map((r) => r.key) : []} initialQueue={view.queue ?? ""}
        onSaved={() => refetch({ requestPolicy: "network-only" })} />
    </Stack>
  );
}
