import { useMemo, useState, type FormEvent } from "react";
import { Alert, Button, Group, Modal, Paper, SimpleGrid, Stack, Table, Text, TextInput } from "@mantine/core";
import { Link, useSearchParams } from "react-router";
import { useClient, useMutation, useQuery } from "urql";
import { downloadWithKey } from "../api/client";
import { useSession } from "../auth/session";
import type { DlqFilterInput } from "../gql/graphql";
import { ErrorNote } from "../ui/Errors";
import { fmtNum, fmtTime } from "../ui/format";
import { Page } from "../ui/Page";
import { DeadLetterCount, DeadLettersQuery, DeleteDeadLetters, RetryDeadLetters } from "./documents";
import { RootCauses } from "./RootCauses";

const KEYS = ["queue", "type", "errorType", "from", "to"] as const;
type Key = (typeof KEYS)[number];

export function dlqFilter(p: URLSearchParams): DlqFilterInput {
  const f: DlqFilterInput = {};
  const v = (k: Key) => p.get(k)?.trim() || null;
  if (v("queue")) f.queue = v("queue");
  if (v("type")) f.jobType = v("type");
  if (v("errorType")) f.errorType = v("errorType");
  if (v("from")) f.deadLetteredFrom = new Date(v("from")!).toISOString();
  if (v("to")) f.deadLetteredTo = new Date(v("to")!).toISOString();
  return f;
}

/** The REST export takes the same filter as query parameters (jobline/api/schemas.py DlqQuery). */
export function csvUrl(f: DlqFilterInput): string {
  const q = new URLSearchParams();
  if (f.queue) q.set("queue", f.queue);
  if (f.jobType) q.set("jobType", f.jobType);
  if (f.errorType) q.set("errorType", f.errorType);
  if (f.deadLetteredFrom) q.set("from", f.deadLetteredFrom);
  if (f.deadLetteredTo) q.set("to", f.deadLetteredTo);
  const s = q.toString();
  return `/api/v1/admin/dlq.csv${s ? `?${s}` : ""}`;
}

type Action = "retry" | "delete";

export function DeadLettersPage() {
  const { apiKey } = useSession();
  const client = useClient();
  const [params, setParams] = useSearchParams();
  const filter = useMemo(() => dlqFilter(params), [params]);
  const [after, setAfter] = useState<string | null>(null);
  const [result, refetch] = useQuery({ query: DeadLettersQuery, variables: { filter, first: 50, after } });
  const [draft, setDraft] = useState<Record<Key, string>>(() => Object.fromEntries(KEYS.map((k) => [k, params.get(k) ?? ""])) as Record<Key, string>);
  const [confirm, setConfirm] = useState<{ action: Action; count: number } | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [retryRes, retryAll] = useMutation(RetryDeadLetters);
  const [deleteRes, deleteAll] = useMutation(DeleteDeadLetters);
  const [csvError, setCsvError] = useState<Error | null>(null);

  function apply(e: FormEvent) {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const k of KEYS) if (draft[k].trim()) next.set(k, draft[k].trim());
    setAfter(null);
    setParams(next);
  }

  async function ask(action: Action) {
    // The count is read again now, so the confirmation states what the action will touch.
    const r = await client.query(DeadLetterCount, { filter }, { requestPolicy: "network-only" }).toPromise();
    setConfirm({ action, count: r.data?.deadLetterCount ?? 0 });
  }

  async function run() {
    if (!confirm) return;
    const r = confirm.action === "retry" ? await retryAll({ filter }) : await deleteAll({ filter });
    const n = r.data && ("retryDeadLetters" in r.data ? r.data.retryDeadLetters.count : r.data.deleteDeadLetters.count);
    setConfirm(null);
    if (!r.error) setDone(`${confirm.action === "retry" ? "Retried" : "Deleted"} ${fmtNum(n ?? 0)} jobs.`);
    refetch({ requestPolicy: "network-only" });
  }

  const jobs = result.data?.deadLetters.jobs ?? [];
  const total = result.data?.deadLetterCount;
  return (
    <Page title="Dead letters">
      <Paper withBorder p="sm" component="form" onSubmit={apply} aria-label="Dead-letter filters">
        <SimpleGrid cols={{ base: 1, sm: 2, lg: 5 }}>
          <TextInput label="Queue" value={draft.queue} onChange={(e) => setDraft({ ...draft, queue: e.currentTarget.value })} />
          <TextInput label="Job type" value={draft.type} onChange={(e) => setDraft({ ...draft, type: e.currentTarget.value })} />
          <TextInput label="Error type" value={draft.errorType} onChange={(e) => setDraft({ ...draft, errorType: e.currentTarget.value })} />
          <TextInput label="Dead-lettered from" type="datetime-local" value={draft.from} onChange={(e) => setDraft({ ...draft, from: e.currentTarget.value })} />
          <TextInput label="Dead-lettered to" type="datetime-local" value={draft.to} onChange={(e) => setDraft({ ...draft, to: e.currentTarget.value })} />
        </SimpleGrid>
        <Group mt="sm" justify="flex-end">
          <Button type="submit">Apply filters</Button>
        </Group>
      </Paper>
      <Group justify="space-between">
        <Text aria-live="polite">{total === undefined ? "…" : `${fmtNum(total)} dead-lettered jobs match`}</Text>
        <Group>
          <Button onClick={() => ask("retry")} disabled={!total}>Retry all</Button>
          <Button color="red" variant="light" onClick={() => ask("delete")} disabled={!total}>Delete all</Button>
          <Button
            variant="default"
            onClick={() => downloadWithKey(apiKey, csvUrl(filter), "dead-letters.csv").catch((e: Error) => setCsvError(e))}
            disabled={!total}
          >
            Export CSV
          </Button>
        </Group>
      </Group>
      {done && <Alert color="green" withCloseButton onClose={() => setDone(null)} role="status">{done}</Alert>}
      <ErrorNote error={result.error ?? retryRes.error ?? deleteRes.error ?? csvError} />
      <RootCauses
        key={`${filter.queue ?? ""}|${filter.jobType ?? ""}`}
        queue={filter.queue ?? null}
        jobType={filter.jobType ?? null}
        onRetried={(m) => {
          setDone(m);
          refetch({ requestPolicy: "network-only" });
        }}
      />
      <Table striped withTableBorder aria-label="Dead-lettered jobs">
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">Job</Table.Th>
            <Table.Th scope="col">Queue</Table.Th>
            <Table.Th scope="col">Type</Table.Th>
            <Table.Th scope="col">Error type</Table.Th>
            <Table.Th scope="col">Error</Table.Th>
            <Table.Th scope="col">Attempts</Table.Th>
            <Table.Th scope="col">Dead-lettered</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {jobs.map((j) => (
            <Table.Tr key={j.id}>
              <Table.Td><Link to={`/jobs/${j.id}`} title="Open the job" style={{ fontFamily: "monospace", fontSize: "var(--mantine-font-size-xs)" }}>{j.id}</Link></Table.Td>
              <Table.Td>{j.queue}</Table.Td>
              <Table.Td>{j.jobType}</Table.Td>
              <Table.Td>{j.errorType ?? "—"}</Table.Td>
              <Table.Td style={{ maxWidth: 360, overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap" }}>{j.error}</Table.Td>
              <Table.Td>{j.attempts}</Table.Td>
              <Table.Td>{fmtTime(j.completedAt)}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <Group justify="flex-end">
        <Button variant="default" disabled={!after} onClick={() => setAfter(null)}>First page</Button>
        <Button variant="default" disabled={!result.data?.deadLetters.nextCursor} onClick={() => setAfter(result.data?.deadLetters.nextCursor ?? null)}>Next page</Button>
      </Group>
      <Modal opened={!!confirm} onClose={() => setConfirm(null)} title={confirm?.action === "retry" ? "Retry dead letters" : "Delete dead letters"}>
        <Stack>
          <Text>
            {confirm?.action === "retry" ? "Retry" : "Permanently delete"} {fmtNum(confirm?.count ?? 0)} dead-lettered jobs matching this filter?
          </Text>
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setConfirm(null)}>Cancel</Button>
            <Button color={confirm?.action === "delete" ? "red" : "blue"} onClick={run} loading={retryRes.fetching || deleteRes.fetching}>
              {confirm?.action === "retry" ? `Retry ${confirm?.count ?? 0} jobs` : `Delete ${confirm?.count ?? 0} jobs`}
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Page>
  );
}
