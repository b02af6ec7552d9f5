import { useEffect, useState, type FormEvent } from "react";
import {
  Badge, Button, Group, Modal, MultiSelect, NumberInput, PasswordInput, Select, Stack, Switch, Table, Tabs, Text, TextInput, Textarea,
} from "@mantine/core";
import { Link, useSearchParams } from "react-router";
import { useMutation, useQuery } from "urql";
import { useSession } from "../auth/session";
import type { AlertChannelsQuery as ChannelsData, AlertHistoryQuery as HistoryData, AlertRulesQuery as RulesData } from "../gql/graphql";
import { ErrorNote } from "../ui/Errors";
import { fmtTime } from "../ui/format";
import { Page } from "../ui/Page";
import {
  AcknowledgeAlert, AlertChannelsQuery, AlertDeliveryQuery, AlertHistoryQuery, AlertRulesQuery, CreateAlertChannel, CreateAlertRule,
  CreateAlertSilence, DeleteAlertChannel, DeleteAlertRule, TestAlertChannel, UpdateAlertChannel, UpdateAlertRule,
} from "./documents";

type Rule = RulesData["alertRules"][number];
type Channel = ChannelsData["alertChannels"][number];
type AlertRow = HistoryData["alerts"]["alerts"][number];

/** What a condition can measure (docs/alerts.md); `live` metrics are per queue, not per job type. */
export const METRICS: { value: string; label: string; live?: boolean; unit?: string }[] = [
  { value: "failure_rate", label: "Failure rate (0-1)" },
  { value: "throughput", label: "Throughput (completed/min)" },
  { value: "p95_duration_ms", label: "p95 duration (ms)" },
  { value: "sla_compliance", label: "SLA compliance (0-1)" },
  { value: "backlog", label: "Backlog (pending jobs)", live: true },
  { value: "oldest_pending_age_s", label: "Oldest pending age (s)", live: true },
  { value: "dlq_growth", label: "Dead letters in window", live: true },
  { value: "active_workers", label: "Active workers", live: true },
  { value: "anomaly", label: "Anomaly detected (queues)", live: true },
];
const STATE_COLOR: Record<string, string> = { ok: "green", pending: "yellow", firing: "red", resolved: "green", cancelled: "gray" };
const DELIVERY_COLOR: Record<string, string> = { queued: "gray", retrying: "orange", sent: "green", failed: "red" };

export function StateBadge({ state }: { state: string }) {
  return <Badge color={STATE_COLOR[state] ?? "gray"} variant="light">{state}</Badge>;
}

/** The JSON a rule form sends (the REST/GraphQL body); blank optional fields are left out. */
export function ruleInput(f: RuleFields): Record<string, unknown> {
  const condition: Record<string, unknown> = { metric: f.metric, op: f.op, threshold: Number(f.threshold), windowS: Number(f.windowS) };
  if (f.metric === "sla_compliance") condition.targetMs = Number(f.targetMs);
  return {
    name: f.name, condition, severity: f.severity, forS: Number(f.forS), renotifyS: Number(f.renotifyS), enabled: f.enabled,
    scope: { queue: f.queue.trim() || null, jobType: f.jobType.trim() || null }, channelIds: f.channelIds,
  };
}

interface RuleFields {
  name: string; metric: string; op: string; threshold: number | string; windowS: number | string; targetMs: number | string;
  queue: string; jobType: string; forS: number | string; severity: string; renotifyS: number | string; channelIds: string[]; enabled: boolean;
}

function fieldsOf(r?: Rule): RuleFields {
  return {
    name: r?.name ?? "", metric: r?.condition.metric ?? "failure_rate", op: r?.condition.op ?? ">", threshold: r?.condition.threshold ?? 0.1,
    windowS: r?.condition.windowS ?? 300, targetMs: r?.condition.targetMs ?? 1000, queue: r?.scope.queue ?? "", jobType: r?.scope.jobType ?? "",
    forS: r?.forS ?? 300, severity: r?.severity ?? "warning", renotifyS: r?.renotifyS ?? 0, channelIds: r?.channelIds ?? [], enabled: r?.enabled ?? true,
  };
}

function RuleForm({ initial, channels, onDone }: { initial?: Rule; channels: { id: string; name: string }[]; onDone: () => void }) {
  const [f, setF] = useState<RuleFields>(fieldsOf(initial));
  const set = <K extends keyof RuleFields>(k: K, v: RuleFields[K]) => setF((old) => ({ ...old, [k]: v }));
  const [created, create] = useMutation(CreateAlertRule);
  const [updated, update] = useMutation(UpdateAlertRule);
  const live = METRICS.find((m) => m.value === f.metric)?.live;
  async function submit(e: FormEvent) {
    e.preventDefault();
    const input = ruleInput(f);
    if (initial?.builtin) delete input.name;
    const r = initial ? await update({ id: initial.id, input }) : await create({ input });
    if (!r.error) onDone();
  }
  return (
    <form onSubmit={submit} aria-label={initial ? "Edit alert rule" : "New alert rule"}>
      <Stack>
        <TextInput label="Name" value={f.name} onChange={(e) => set("name", e.currentTarget.value)} required disabled={!!initial?.builtin} />
        <Group grow align="flex-start">
          <Select label="Metric" data={METRICS.map(({ value, label }) => ({ value, label }))} value={f.metric} onChange={(v) => set("metric", v ?? "failure_rate")} allowDeselect={false} />
          <Select label="Operator" data={[">", ">=", "<", "<="]} value={f.op} onChange={(v) => set("op", v ?? ">")} allowDeselect={false} w={90} />
          <NumberInput label="Threshold" value={f.threshold} onChange={(v) => set("threshold", v)} decimalScale={4} required />
        </Group>
        <Group grow align="flex-start">
          <NumberInput label="Window (s)" value={f.windowS} onChange={(v) => set("windowS", v)} min={60} description="rollup metrics, dead letters, anomalies" />
          {f.metric === "sla_compliance" && <NumberInput label="SLA target (ms)" value={f.targetMs} onChange={(v) => set("targetMs", v)} min={1} required />}
          <NumberInput label="For (s)" value={f.forS} onChange={(v) => set("forS", v)} min={0} description="how long it must hold before firing" />
        </Group>
        <Group grow align="flex-start">
          <TextInput label="Queue" value={f.queue} onChange={(e) => set("queue", e.currentTarget.value)} placeholder="all queues" />
          <TextInput label="Job type" value={f.jobType} onChange={(e) => set("jobType", e.currentTarget.value)} placeholder="all job types" disabled={live} description={live ? "per queue only for this metric" : undefined} />
        </Group>
        <Group grow align="flex-start">
          <Select label="Severity" data={["info", "warning", "critical"]} value={f.severity} onChange={(v) => set("severity", v ?? "warning")} allowDeselect={false} />
          <NumberInput label="Re-notify every (s)" value={f.renotifyS} onChange={(v) => set("renotifyS", v)} min={0} description="0: once per firing" />
        </Group>
        <MultiSelect label="Channels" data={channels.map((c) => ({ value: c.id, label: c.name }))} value={f.channelIds} onChange={(v) => set("channelIds", v)} placeholder="none" />
        <Switch label="Enabled" checked={f.enabled} onChange={(e) => set("enabled", e.currentTarget.checked)} />
        <ErrorNote error={created.error ?? updated.error} />
        <Group justify="flex-end">
          <Button variant="default" onClick={onDone}>Cancel</Button>
          <Button type="submit" loading={created.fetching || updated.fetching}>{initial ? "Save rule" : "Create rule"}</Button>
        </Group>
      </Stack>
    </form>
  );
}

function RulesTab() {
  const session = useSession();
  const [{ data, error }, refetch] = useQuery({ query: AlertRulesQuery });
  const [editing, setEditing] = useState<Rule | "new" | null>(null);
  const [del, doDelete] = useMutation(DeleteAlertRule);
  const [, update] = useMutation(UpdateAlertRule);
  const [silenced, silence] = useMutation(CreateAlertSilence);
  const reload = () => refetch({ requestPolicy: "network-only" });
  const rules = data?.alertRules ?? [];
  const channels = data?.alertChannels ?? [];
  const names = new Map(channels.map((c) => [c.id, c.name]));
  return (
    <Stack>
      {session.isAdmin && <Group justify="flex-end"><Button onClick={() => setEditing("new")}>New rule</Button></Group>}
      <ErrorNote error={error ?? del.error ?? silenced.error} />
      <Table striped withTableBorder aria-label="Alert rules">
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">Rule</Table.Th>
            <Table.Th scope="col">Condition</Table.Th>
            <Table.Th scope="col">Scope</Table.Th>
            <Table.Th scope="col">State</Table.Th>
            <Table.Th scope="col">Channels</Table.Th>
            <Table.Th scope="col">Enabled</Table.Th>
            {session.isAdmin && <Table.Th scope="col">Actions</Table.Th>}
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rules.map((r) => (
            <Table.Tr key={r.id} data-rule={r.name}>
              <Table.Th scope="row">
                <Link to={`/alerts?tab=history&rule=${r.id}`}>{r.name}</Link>
                {r.builtin && <Badge ml={6} size="xs" variant="outline">built in</Badge>}
                <Text size="xs" c="dimmed">{r.severity}</Text>
              </Table.Th>
              <Table.Td><code>{r.description}</code>{r.forS > 0 && <Text size="xs" c="dimmed">for {r.forS} s</Text>}</Table.Td>
              <Table.Td>{r.scope.queue ?? "all queues"}{r.scope.jobType ? ` / ${r.scope.jobType}` : ""}</Table.Td>
              <Table.Td>
                <StateBadge state={r.state} />
                <Text size="xs" c="dimmed">{r.lastValue === null || r.lastValue === undefined ? "no data" : `value ${r.lastValue}`}</Text>
              </Table.Td>
              <Table.Td>{r.channelIds.map((c) => names.get(c) ?? c).join(", ") || <Text span c="dimmed">none</Text>}</Table.Td>
              <Table.Td>
                <Switch aria-label={`Enabled: ${r.name}`} checked={r.enabled} disabled={!session.isAdmin}
                  onChange={async (e) => { await update({ id: r.id, input: { enabled: e.currentTarget.checked } }); reload(); }} />
              </Table.Td>
              {session.isAdmin && (
                <Table.Td>
                  <Group gap={6} wrap="nowrap">
                    <Button size="xs" variant="default" onClick={() => setEditing(r)} aria-label={`Edit ${r.name}`}>Edit</Button>
                    <Button size="xs" variant="default" aria-label={`Silence 1h: ${r.name}`}
                      onClick={async () => { await silence({ input: { ruleId: r.id, durationS: 3600, reason: "silenced from the dashboard" } }); reload(); }}>
                      Silence 1h
                    </Button>
                    {!r.builtin && (
                      <Button size="xs" color="red" variant="light" aria-label={`Delete ${r.name}`}
                        onClick={async () => { await doDelete({ id: r.id }); reload(); }}>Delete</Button>
                    )}
                  </Group>
                </Table.Td>
              )}
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <Modal opened={editing !== null} onClose={() => setEditing(null)} title={editing === "new" ? "New alert rule" : "Edit alert rule"} size="xl">
        {editing !== null && <RuleForm initial={editing === "new" ? undefined : editing} channels={channels} onDone={() => { setEditing(null); reload(); }} />}
      </Modal>
    </Stack>
  );
}

/** The channel config a form sends; lists are one per line (or comma-separated for email). */
export function channelConfig(kind: string, f: Record<string, string>): Record<string, unknown> {
  const lines = (s: string) => s.split(/[\n,]/).map((x) => x.trim()).filter(Boolean);
  if (kind === "email") {
    const cfg: Record<string, unknown> = { host: f.host, port: Number(f.port || 587), security: f.security || "starttls", fromAddress: f.fromAddress, to: lines(f.to ?? "") };
    if (f.username) cfg.username = f.username;
    if (f.password) cfg.password = f.password;
    return cfg;
  }
  if (kind === "slack") return { webhookUrls: lines(f.urls ?? "") };
  const cfg: Record<string, unknown> = { urls: lines(f.urls ?? "") };
  if (f.secret) cfg.secret = f.secret;
  return cfg;
}

function fieldsOfChannel(c?: Channel): Record<string, string> {
  const cfg = (c?.config ?? {}) as Record<string, unknown>;
  const list = (v: unknown) => (Array.isArray(v) ? v.join("\n") : "");
  return {
    host: String(cfg.host ?? ""), port: String(cfg.port ?? "587"), security: String(cfg.security ?? "starttls"),
    username: String(cfg.username ?? ""), password: String(cfg.password ?? ""), fromAddress: String(cfg.fromAddress ?? ""),
    to: list(cfg.to), urls: list(cfg.webhookUrls ?? cfg.urls), secret: String(cfg.secret ?? ""),
  };
}

function ChannelForm({ initial, onDone }: { initial?: Channel; onDone: () => void }) {
  const [name, setName] = useState(initial?.name ?? "");
  const [kind, setKind] = useState(initial?.kind ?? "email");
  const [f, setF] = useState(fieldsOfChannel(initial));
  const set = (k: string) => (e: { currentTarget: { value: string } }) => { const v = e.currentTarget.value; setF((o) => ({ ...o, [k]: v })); };
  const [created, create] = useMutation(CreateAlertChannel);
  const [updated, update] = useMutation(UpdateAlertChannel);
  async function submit(e: FormEvent) {
    e.preventDefault();
    const config = channelConfig(kind, f);
    const r = initial ? await update({ id: initial.id, input: { name, config } }) : await create({ input: { name, kind, config } });
    if (!r.error) onDone();
  }
  return (
    <form onSubmit={submit} aria-label={initial ? "Edit channel" : "New channel"}>
      <Stack>
        <TextInput label="Name" value={name} onChange={(e) => setName(e.currentTarget.value)} required />
        <Select label="Kind" data={[{ value: "email", label: "Email (SMTP)" }, { value: "slack", label: "Slack" }, { value: "webhook", label: "Webhook" }]}
          value={kind} onChange={(v) => setKind(v ?? "email")} allowDeselect={false} disabled={!!initial} />
        {kind === "email" && (
          <>
            <Group grow>
              <TextInput label="SMTP host" value={f.host} onChange={set("host")} required />
              <TextInput label="Port" value={f.port} onChange={set("port")} />
              <Select label="Security" data={["starttls", "tls", "none"]} value={f.security} onChange={(v) => setF((o) => ({ ...o, security: v ?? "starttls" }))} allowDeselect={false} />
            </Group>
            <Group grow>
              <TextInput label="Username" value={f.username} onChange={set("username")} />
              <PasswordInput label="Password" value={f.password} onChange={set("password")} description="*** keeps the stored one" />
            </Group>
            <TextInput label="From" value={f.fromAddress} onChange={set("fromAddress")} required />
            <Textarea label="Recipients" value={f.to} onChange={set("to")} description="one address per line" autosize minRows={2} required />
          </>
        )}
        {kind !== "email" && (
          <Textarea label={kind === "slack" ? "Incoming-webhook URLs" : "URLs"} value={f.urls} onChange={set("urls")} description="one per line; masked URLs are kept" autosize minRows={2} required />
        )}
        {kind === "webhook" && (
          <PasswordInput label="Signing secret" value={f.secret} onChange={set("secret")} description="HMAC-SHA256 of the X-Jobline-Signature header (8+ characters)" />
        )}
        <ErrorNote error={created.error ?? updated.error} />
        <Group justify="flex-end">
          <Button variant="default" onClick={onDone}>Cancel</Button>
          <Button type="submit" loading={created.fetching || updated.fetching}>{initial ? "Save channel" : "Create channel"}</Button>
        </Group>
      </Stack>
    </form>
  );
}

/** Follows one test delivery until it is sent or failed. */
function TestStatus({ id }: { id: string }) {
  const [{ data }, refetch] = useQuery({ query: AlertDeliveryQuery, variables: { id }, requestPolicy: "network-only" });
  const d = data?.alertDelivery;
  const done = d?.status === "sent" || d?.status === "failed";
  useEffect(() => {
    if (done) return;
    const t = setInterval(() => refetch({ requestPolicy: "network-only" }), 1000);
    return () => clearInterval(t);
  }, [done, refetch]);
  if (!d) return <Badge color="gray" variant="light">queued</Badge>;
  return (
    <Badge color={DELIVERY_COLOR[d.status] ?? "gray"} variant="light" title={d.error ?? undefined}>
      test {d.status}{d.attempts > 1 ? ` (${d.attempts} attempts)` : ""}
    </Badge>
  );
}

function ChannelsTab() {
  const session = useSession();
  const [{ data, error }, refetch] = useQuery({ query: AlertChannelsQuery });
  const [editing, setEditing] = useState<Channel | "new" | null>(null);
  const [tests, setTests] = useState<Record<string, string[]>>({});
  const [tested, test] = useMutation(TestAlertChannel);
  const [del, doDelete] = useMutation(DeleteAlertChannel);
  const reload = () => refetch({ requestPolicy: "network-only" });
  const rows = data?.alertChannels ?? [];
  const recipients = (c: Channel) => {
    const cfg = c.config as Record<string, unknown>;
    const v = (cfg.to ?? cfg.webhookUrls ?? cfg.urls) as string[] | undefined;
    return (v ?? []).join(", ");
  };
  return (
    <Stack>
      {session.isAdmin && <Group justify="flex-end"><Button onClick={() => setEditing("new")}>New channel</Button></Group>}
      <ErrorNote error={error ?? tested.error ?? del.error} />
      <Table striped withTableBorder aria-label="Alert channels">
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">Channel</Table.Th>
            <Table.Th scope="col">Kind</Table.Th>
            <Table.Th scope="col">Recipients</Table.Th>
            {session.isAdmin && <Table.Th scope="col">Actions</Table.Th>}
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.map((c) => (
            <Table.Tr key={c.id} data-channel={c.name}>
              <Table.Th scope="row">{c.name}{!c.enabled && <Badge ml={6} size="xs" color="gray">disabled</Badge>}</Table.Th>
              <Table.Td>{c.kind}</Table.Td>
              <Table.Td><Text size="sm" style={{ wordBreak: "break-all" }}>{recipients(c)}</Text></Table.Td>
              {session.isAdmin && (
                <Table.Td>
                  <Group gap={6} wrap="nowrap">
                    <Button size="xs" variant="light" aria-label={`Send test to ${c.name}`}
                      onClick={async () => { const r = await test({ id: c.id }); const ids = r.data?.testAlertChannel?.map((d) => d.id); if (ids) setTests((t) => ({ ...t, [c.id]: ids })); }}>
                      Send test
                    </Button>
                    <Button size="xs" variant="default" onClick={() => setEditing(c)} aria-label={`Edit ${c.name}`}>Edit</Button>
                    <Button size="xs" color="red" variant="light" aria-label={`Delete ${c.name}`} onClick={async () => { await doDelete({ id: c.id }); reload(); }}>Delete</Button>
                    {(tests[c.id] ?? []).map((id) => <TestStatus key={id} id={id} />)}
                  </Group>
                </Table.Td>
              )}
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {rows.length === 0 && <Text c="dimmed">No channels yet.</Text>}
      <Modal opened={editing !== null} onClose={() => setEditing(null)} title={editing === "new" ? "New channel" : "Edit channel"} size="lg">
        {editing !== null && <ChannelForm initial={editing === "new" ? undefined : editing} onDone={() => { setEditing(null); reload(); }} />}
      </Modal>
    </Stack>
  );
}

function HistoryTab({ ruleId, status, setStatus }: { ruleId: string | null; status: string | null; setStatus: (s: string | null) => void }) {
  const [{ data, error }, refetch] = useQuery({ query: AlertHistoryQuery, variables: { ruleId, status } });
  const [acked, ack] = useMutation(AcknowledgeAlert);
  useEffect(() => {
    const t = setInterval(() => refetch({ requestPolicy: "network-only" }), 10_000);
    return () => clearInterval(t);
  }, [refetch]);
  const rows: AlertRow[] = data?.alerts.alerts ?? [];
  return (
    <Stack>
      <Group>
        <Select label="Status" placeholder="any" clearable data={["firing", "pending", "resolved", "cancelled"]} value={status} onChange={setStatus} w={180} />
        {ruleId && <Text size="sm">Rule filter on · <Link to="/alerts?tab=history">show every rule</Link></Text>}
      </Group>
      <ErrorNote error={error ?? acked.error} />
      <Table striped withTableBorder aria-label="Alert history">
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">Started</Table.Th>
            <Table.Th scope="col">Rule</Table.Th>
            <Table.Th scope="col">Status</Table.Th>
            <Table.Th scope="col">Value</Table.Th>
            <Table.Th scope="col">Deliveries</Table.Th>
            <Table.Th scope="col">Acknowledged</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.map((a) => (
            <Table.Tr key={a.id} data-alert={a.ruleName}>
              <Table.Td>{fmtTime(a.startedAt)}{a.resolvedAt && <Text size="xs" c="dimmed">until {fmtTime(a.resolvedAt)}</Text>}</Table.Td>
              <Table.Th scope="row">
                {a.ruleName} <Text span size="xs" c="dimmed">{a.severity}</Text>
                {a.scope.queue && <Text size="xs"><Link to={`/jobs?queue=${encodeURIComponent(a.scope.queue)}`}>queue {a.scope.queue}</Link></Text>}
              </Table.Th>
              <Table.Td><StateBadge state={a.status} />{a.silenced && <Badge ml={4} size="xs" color="gray">silenced</Badge>}</Table.Td>
              <Table.Td>{a.value ?? "–"}{a.peakValue !== null && a.peakValue !== a.value && <Text size="xs" c="dimmed">peak {a.peakValue}</Text>}</Table.Td>
              <Table.Td>
                <Group gap={4}>
                  {a.deliveries.map((d) => (
                    <Badge key={d.id} color={DELIVERY_COLOR[d.status] ?? "gray"} variant="light" title={d.error ?? undefined}>
                      {d.channelName}{d.recipient ? ` #${d.recipient + 1}` : ""} {d.event}: {d.status}{d.attempts > 1 ? ` ×${d.attempts}` : ""}
                    </Badge>
                  ))}
                  {a.deliveries.length === 0 && <Text size="xs" c="dimmed">none</Text>}
                </Group>
              </Table.Td>
              <Table.Td>
                {a.acknowledgedAt ? <Text size="sm">{a.acknowledgedBy ?? "yes"}</Text>
                  : a.status === "firing" ? (
                    <Button size="xs" variant="light" aria-label={`Acknowledge ${a.ruleName}`} onClick={async () => { await ack({ id: a.id }); refetch({ requestPolicy: "network-only" }); }}>
                      Acknowledge
                    </Button>
                  ) : <Text size="xs" c="dimmed">–</Text>}
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {rows.length === 0 && <Text c="dimmed">No alerts.</Text>}
    </Stack>
  );
}

export function AlertsPage() {
  const [params, setParams] = useSearchParams();
  const ruleId = params.get("rule");
  const tab = params.get("tab") ?? (ruleId || params.get("status") ? "history" : "rules");
  const update = (changes: Record<string, string | null>) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) {
      if (v === null) next.delete(k);
      else next.set(k, v);
    }
    setParams(next);
  };
  return (
    <Page title="Alerts">
      <Tabs value={tab} onChange={(v) => update({ tab: v })}>
        <Tabs.List>
          <Tabs.Tab value="rules">Rules</Tabs.Tab>
          <Tabs.Tab value="channels">Channels</Tabs.Tab>
          <Tabs.Tab value="history">History</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="rules" pt="md">{tab === "rules" && <RulesTab />}</Tabs.Panel>
        <Tabs.Panel value="channels" pt="md">{tab === "channels" && <ChannelsTab />}</Tabs.Panel>
        <Tabs.Panel value="history" pt="md">
          {tab === "history" && <HistoryTab ruleId={ruleId} status={params.get("status")} setStatus={(s) => update({ status: s })} />}
        </Tabs.Panel>
      </Tabs>
    </Page>
  );
}
