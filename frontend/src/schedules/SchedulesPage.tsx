import { useState, type FormEvent } from "react";
import { Button, Group, Modal, Stack, Switch, Table, Text, TextInput, Textarea } from "@mantine/core";
import { Link } from "react-router";
import { useMutation, useQuery } from "urql";
import type { SchedulesQuery as SchedulesData } from "../gql/graphql";
import { ErrorNote } from "../ui/Errors";
import { fmtTime, shortId } from "../ui/format";
import { Page } from "../ui/Page";
import { CreateSchedule, DeleteSchedule, SchedulesQuery, UpdateSchedule } from "./documents";

type Schedule = SchedulesData["scheduledJobs"][number];

function ScheduleForm({ initial, onDone }: { initial?: Schedule; onDone: () => void }) {
  const [name, setName] = useState(initial?.name ?? "");
  const [queue, setQueue] = useState(initial?.queue ?? "default");
  const [jobType, setJobType] = useState(initial?.jobType ?? "");
  const [schedule, setSchedule] = useState(initial?.schedule ?? "*/5 * * * *");
  const [timezone, setTimezone] = useState(initial?.timezone ?? "UTC");
  const [payload, setPayload] = useState(JSON.stringify(initial?.payload ?? {}, null, 2));
  const [enabled, setEnabled] = useState(initial?.enabled ?? true);
  const [payloadError, setPayloadError] = useState<string | null>(null);
  const [created, create] = useMutation(CreateSchedule);
  const [updated, update] = useMutation(UpdateSchedule);

  async function submit(e: FormEvent) {
    e.preventDefault();
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload || "{}");
    } catch {
      setPayloadError("Payload is not valid JSON");
      return;
    }
    const input = { name, queue, jobType, schedule, timezone, payload: parsed, enabled };
    const r = initial ? await update({ id: initial.id, input }) : await create({ input });
    if (!r.error) onDone();
  }
  return (
    <form onSubmit={submit} aria-label={initial ? "Edit schedule" : "New schedule"}>
      <Stack>
        <TextInput label="Name" value={name} onChange={(e) => setName(e.currentTarget.value)} required />
        <Group grow>
          <TextInput label="Queue" value={queue} onChange={(e) => setQueue(e.currentTarget.value)} required />
          <TextInput label="Job type" value={jobType} onChange={(e) => setJobType(e.currentTarget.value)} required />
        </Group>
        <Group grow>
          <TextInput label="Cron expression" value={schedule} onChange={(e) => setSchedule(e.currentTarget.value)} required description="e.g. */5 * * * * (every 5 minutes)" />
          <TextInput label="Time zone" value={timezone} onChange={(e) => setTimezone(e.currentTarget.value)} />
        </Group>
        <Textarea label="Payload (JSON)" value={payload} onChange={(e) => setPayload(e.currentTarget.value)} autosize minRows={2} error={payloadError} styles={{ input: { fontFamily: "monospace" } }} />
        <Switch label="Enabled" checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} />
        <ErrorNote error={created.error ?? updated.error} />
        <Group justify="flex-end">
          <Button variant="default" onClick={onDone}>Cancel</Button>
          <Button type="submit" loading={created.fetching || updated.fetching}>{initial ? "Save schedule" : "Create schedule"}</Button>
        </Group>
      </Stack>
    </form>
  );
}

export function SchedulesPage() {
  const [{ data, error }, refetch] = useQuery({ query: SchedulesQuery });
  const [editing, setEditing] = useState<Schedule | "new" | null>(null);
  const [deleting, setDeleting] = useState<Schedule | null>(null);
  const [del, doDelete] = useMutation(DeleteSchedule);
  const [, update] = useMutation(UpdateSchedule);
  const close = () => {
    setEditing(null);
    refetch({ requestPolicy: "network-only" });
  };
  const rows = data?.scheduledJobs ?? [];
  return (
    <Page title="Schedules" actions={<Button onClick={() => setEditing("new")}>New schedule</Button>}>
      <ErrorNote error={error ?? del.error} />
      <Table striped withTableBorder aria-label="Schedules">
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">Name</Table.Th>
            <Table.Th scope="col">Cron</Table.Th>
            <Table.Th scope="col">Job</Table.Th>
            <Table.Th scope="col">Enabled</Table.Th>
            <Table.Th scope="col">Next runs</Table.Th>
            <Table.Th scope="col">Last run</Table.Th>
            <Table.Th scope="col">Actions</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.map((s) => (
            <Table.Tr key={s.id} data-schedule={s.name}>
              <Table.Th scope="row">{s.name}</Table.Th>
              <Table.Td><code>{s.schedule}</code> <Text span size="xs" c="dimmed">{s.timezone}</Text></Table.Td>
              <Table.Td>{s.jobType} on {s.queue}</Table.Td>
              <Table.Td>
                <Switch
                  aria-label={`Enabled: ${s.name}`}
                  checked={s.enabled}
                  onChange={async (e) => { await update({ id: s.id, input: { enabled: e.currentTarget.checked } }); refetch({ requestPolicy: "network-only" }); }}
                />
              </Table.Td>
              <Table.Td>
                <Stack gap={0}>
                  {s.nextRuns.slice(0, 3).map((r) => <Text key={r} size="xs">{fmtTime(r)}</Text>)}
                </Stack>
              </Table.Td>
              <Table.Td>
                {fmtTime(s.lastRunAt)}
                {s.lastJobId && <> · <Link to={`/jobs/${s.lastJobId}`}>{shortId(s.lastJobId)}</Link></>}
              </Table.Td>
              <Table.Td>
                <Group gap={6} wrap="nowrap">
                  <Button size="xs" variant="default" onClick={() => setEditing(s)} aria-label={`Edit ${s.name}`}>Edit</Button>
                  <Button size="xs" color="red" variant="light" onClick={() => setDeleting(s)} aria-label={`Delete ${s.name}`}>Delete</Button>
                </Group>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {rows.length === 0 && <Text c="dimmed">No schedules yet.</Text>}
      <Modal opened={editing !== null} onClose={() => setEditing(null)} title={editing === "new" ? "New schedule" : "Edit schedule"} size="lg">
        {editing !== null && <ScheduleForm initial={editing === "new" ? undefined : editing} onDone={close} />}
      </Modal>
      <Modal opened={!!deleting} onClose={() => setDeleting(null)} title="Delete schedule">
        <Stack>
          <Text>Delete schedule “{deleting?.name}”? Jobs it already created stay.</Text>
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setDeleting(null)}>Cancel</Button>
            <Button color="red" onClick={async () => { if (deleting) await doDelete({ id: deleting.id }); setDeleting(null); refetch({ requestPolicy: "network-only" }); }}>
              Delete schedule
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Page>
  );
}
