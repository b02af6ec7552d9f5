import { memo, useEffect, useMemo, useRef, useState, type FormEvent } from "react";
import type { ResultOf } from "@graphql-typed-document-node/core";
import { Button, Group, Paper, Select, SimpleGrid, Table, Text, TextInput } from "@mantine/core";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { useQuery } from "urql";
import type { JobStatus } from "../gql/graphql";
import { JobStatusEventsSub } from "../live/documents";
import { statusAfter } from "../live/status";
import { useLiveBatches } from "../live/useLive";
import { ErrorNote } from "../ui/Errors";
import { fmtTime } from "../ui/format";
import { Page } from "../ui/Page";
import { StatusBadge } from "../ui/StatusBadge";
import { JobsQuery } from "./documents";
import { FILTER_KEYS, STATUSES, filterFromParams, type FilterKey } from "./filters";
import { JobDrawer } from "./JobDrawer";
import { SubmitJobButton } from "./SubmitJob";

const PAGE = 50;

/** Memoised (no props): a live batch re-renders the rows it moved, not the form's inputs. */
const FilterForm = memo(function FilterForm() {
  const [params, setParams] = useSearchParams();
  const [draft, setDraft] = useState<Record<FilterKey, string>>(
    () => Object.fromEntries(FILTER_KEYS.map((k) => [k, params.get(k) ?? ""])) as Record<FilterKey, string>,
  );
  const set = (k: FilterKey) => (v: string) => setDraft((d) => ({ ...d, [k]: v }));
  function apply(e: FormEvent) {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const k of FILTER_KEYS) if (draft[k].trim()) next.set(k, draft[k].trim());
    setParams(next);
  }
  function clear() {
    setDraft(Object.fromEntries(FILTER_KEYS.map((k) => [k, ""])) as Record<FilterKey, string>);
    setParams(new URLSearchParams());
  }
  return (
    <Paper withBorder p="sm" component="form" onSubmit={apply} aria-label="Job filters">
      <SimpleGrid cols={{ base: 1, sm: 2, lg: 4 }}>
        <TextInput label="Queue" value={draft.queue} onChange={(e) => set("queue")(e.currentTarget.value)} />
        <Select
          label="Status"
          clearable
          data={STATUSES.map((s) => ({ value: s, label: s.replace("_", " ").toLowerCase() }))}
          value={draft.status || null}
          onChange={(v) => set("status")(v ?? "")}
        />
        <TextInput label="Job type" value={draft.type} onChange={(e) => set("type")(e.currentTarget.value)} />
        <TextInput label="Error type" value={draft.errorType} onChange={(e) => set("errorType")(e.currentTarget.value)} />
        <TextInput label="Created from" type="datetime-local" value={draft.from} onChange={(e) => set("from")(e.currentTarget.value)} />
        <TextInput label="Created to" type="datetime-local" value={draft.to} onChange={(e) => set("to")(e.currentTarget.value)} />
        <TextInput label="Payload contains (JSON)" placeholder='{"userId": 123}' value={draft.payload} onChange={(e) => set("payload")(e.currentTarget.value)} />
        <TextInput label="Search id or error text" value={draft.q} onChange={(e) => set("q")(e.currentTarget.value)} />
      </SimpleGrid>
      <Group mt="sm" justify="flex-end">
        <Button variant="default" onClick={clear}>Clear</Button>
        <Button type="submit">Apply filters</Button>
      </Group>
    </Paper>
  );
});

type JobNode = NonNullable<ResultOf<typeof JobsQuery>["jobs"]>["edges"][number]["node"];

/** One row; memoised so a live batch re-renders only the rows whose status it moved (the
 * commit -> DOM path of bench/dashboard_latency.py), not the whole page of 50. */
const JobRow = memo(function JobRow({ job: j, status, href }: { job: JobNode; status: JobStatus; href: string }) {
  return (
    <Table.Tr data-job-id={j.id}>
      <Table.Td>
        <Link to={href} title="Open the job" style={{ fontFamily: "monospace", fontSize: "var(--mantine-font-size-xs)" }}>
          {j.id}
        </Link>
      </Table.Td>
      <Table.Td>{j.jobType}</Table.Td>
      <Table.Td>{j.queue}</Table.Td>
      <Table.Td><StatusBadge status={status} /></Table.Td>
      <Table.Td>{j.attempts}/{j.maxAttempts}</Table.Td>
      <Table.Td>{fmtTime(j.createdAt)}</Table.Td>
      <Table.Td style={{ maxWidth: 320, overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap" }}>
        {j.errorType ? `${j.errorType}: ${j.error ?? ""}` : ""}
      </Table.Td>
    </Table.Tr>
  );
});

export function JobsPage() {
  const [params, setParams] = useSearchParams();
  const { jobId } = useParams();
  const navigate = useNavigate();
  const { filter, payloadError } = useMemo(() => filterFromParams(params), [params]);
  const after = params.get("after");
  const [cursors, setCursors] = useState<string[]>([]);
  const [result, refetch] = useQuery({
    query: JobsQuery,
    variables: { filter, first: PAGE, after },
    pause: !!payloadError,
  });
  // Live: statuses of visible rows follow the events; new jobs appear on the first page.
  const [overrides, setOverrides] = useState<Map<string, JobStatus>>(new Map());
  useEffect(() => setOverrides(new Map()), [result.data]);
  // New jobs on the first page: at most one re-read per second, however fast jobs arrive.
  const refetchTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const lastRefetch = useRef(0);
  useEffect(() => () => { if (refetchTimer.current) clearTimeout(refetchTimer.current); }, []);
  function refetchSoon() {
    if (refetchTimer.current) return;
    const wait = Math.max(0, lastRefetch.current + 1000 - Date.now());
    refetchTimer.current = setTimeout(() => {
      refetchTimer.current = null;
      lastRefetch.current = Date.now();
      refetch({ requestPolicy: "network-only" });
    }, wait);
  }
  const visible = useMemo(() => new Set(result.data?.jobs.edges.map((e) => e.node.id)), [result.data]);
  useLiveBatches(JobStatusEventsSub, { filter: filter.queue ? { queue: filter.queue } : null }, (batch) => {
    let changed = false;
    let fresh = false;
    const next = new Map(overrides);
    for (const ev of batch.flatMap((b) => b.jobEventBatches.events)) {
      const s = statusAfter(ev.type, ev.data);
      if (ev.jobId && visible.has(ev.jobId) && s) {
        next.set(ev.jobId, s);
        changed = true;
      } else if (ev.type === "jobs.submitted" && !after) {
        fresh = true;
      }
    }
    if (changed) setOverrides(next);
    if (fresh) refetchSoon();
  });

  const edges = result.data?.jobs.edges ?? [];
  const page = result.data?.jobs.pageInfo;
  const search = params.toString();
  const withParams = (path: string) => (search ? `${path}?${search}` : path);

  function go(cursor: string | null) {
    const next = new URLSearchParams(params);
    if (cursor) next.set("after", cursor);
    else next.delete("after");
    setParams(next);
  }

  return (
    <Page title="Jobs" actions={<SubmitJobButton onSubmitted={(id) => navigate(withParams(`/jobs/${id}`))} />}>
      <FilterForm key={search} />
      {payloadError && <Text c="red" role="alert">{payloadError}</Text>}
      <ErrorNote error={result.error} />
      <Table striped highlightOnHover withTableBorder aria-label="Jobs">
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">Job</Table.Th>
            <Table.Th scope="col">Type</Table.Th>
            <Table.Th scope="col">Queue</Table.Th>
            <Table.Th scope="col">Status</Table.Th>
            <Table.Th scope="col">Attempts</Table.Th>
            <Table.Th scope="col">Created</Table.Th>
            <Table.Th scope="col">Error</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {edges.map(({ node: j }) => (
            <JobRow key={j.id} job={j} status={overrides.get(j.id) ?? j.status} href={withParams(`/jobs/${j.id}`)} />
          ))}
        </Table.Tbody>
      </Table>
      {!result.fetching && edges.length === 0 && <Text c="dimmed">No jobs match.</Text>}
      <Group justify="space-between">
        <Text size="sm" c="dimmed">{edges.length} shown{after ? " (not the first page)" : ""}</Text>
        <Group>
          <Button variant="default" disabled={!after} onClick={() => { go(null); setCursors([]); }}>First page</Button>
          <Button
            variant="default"
            disabled={!after}
            onClick={() => {
              const prev = cursors.slice(0, -1);
              setCursors(prev);
              go(prev.length ? prev[prev.length - 1] : null);
            }}
          >
            Previous page
          </Button>
          <Button
            variant="default"
            disabled={!page?.hasNextPage}
            onClick={() => {
              if (page?.endCursor) {
                setCursors([...cursors, page.endCursor]);
                go(page.endCursor);
              }
            }}
          >
            Next page
          </Button>
        </Group>
      </Group>
      {jobId && <JobDrawer jobId={jobId} onClose={() => navigate(withParams("/jobs"))} />}
    </Page>
  );
}
