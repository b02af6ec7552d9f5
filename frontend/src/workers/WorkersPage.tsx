import { useEffect } from "react";
import { Badge, Table, Text } from "@mantine/core";
import { Link } from "react-router";
import { useQuery } from "urql";
import { graphql } from "../gql";
import { useLiveBatches } from "../live/useLive";
import { ErrorNote } from "../ui/Errors";
import { fmtBytes, fmtMs, fmtNum, shortId } from "../ui/format";
import { Page } from "../ui/Page";

export const WorkersQuery = graphql(`
  query Workers {
    workers { id queues concurrency host pid status running currentJobs startedAt lastSeenAt uptimeMs processed failed cpuPercent rssBytes }
  }
`);
export const WorkerEventsSub = graphql(`
  subscription WorkerEvents { workerEvents { id type } }
`);

export function WorkersPage() {
  const [{ data, error }, refetch] = useQuery({ query: WorkersQuery });
  useLiveBatches(WorkerEventsSub, {}, () => refetch({ requestPolicy: "network-only" }), { minIntervalMs: 1000 });
  // CPU, memory and heartbeat age change with every heartbeat, which is not an event: re-read
  // every 5 s while the page is open.
  useEffect(() => {
    const t = setInterval(() => refetch({ requestPolicy: "network-only" }), 5000);
    return () => clearInterval(t);
  }, [refetch]);
  const rows = data?.workers ?? [];
  const now = Date.now();
  return (
    <Page title="Workers">
      <ErrorNote error={error} />
      <Table striped withTableBorder aria-label="Workers">
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">Worker</Table.Th>
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
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.map((w) => (
            <Table.Tr key={w.id}>
              <Table.Th scope="row" style={{ fontFamily: "monospace" }}>{w.id}</Table.Th>
              <Table.Td>{w.queues.length && !w.queues.includes("*") ? w.queues.join(", ") : "all queues"}</Table.Td>
              <Table.Td><Badge color={w.status === "busy" ? "yellow" : w.status === "idle" ? "green" : "gray"}>{w.status}</Badge> <Text span size="xs">{w.running}/{w.concurrency}</Text></Table.Td>
              <Table.Td>
                {w.currentJobs.slice(0, 3).map((j) => <Link key={j} to={`/jobs/${j}`} style={{ marginRight: 6, fontFamily: "monospace" }}>{shortId(j)}</Link>)}
                {w.currentJobs.length > 3 && `+${w.currentJobs.length - 3}`}
              </Table.Td>
              <Table.Td ta="right">{fmtMs(w.uptimeMs)}</Table.Td>
              <Table.Td ta="right">{fmtNum(w.processed)}</Table.Td>
              <Table.Td ta="right">{fmtNum(w.failed)}</Table.Td>
              <Table.Td ta="right">{w.cpuPercent === null || w.cpuPercent === undefined ? "—" : `${w.cpuPercent.toFixed(0)}%`}</Table.Td>
              <Table.Td ta="right">{fmtBytes(w.rssBytes)}</Table.Td>
              <Table.Td>{w.host ?? "—"} / {w.pid ?? "—"}</Table.Td>
              <Table.Td ta="right">{w.lastSeenAt ? fmtMs(now - new Date(w.lastSeenAt).getTime()) : "—"}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {rows.length === 0 && <Text c="dimmed">No live workers.</Text>}
      <Text size="sm" c="dimmed">CPU and memory are the worker process's, from its heartbeats (re-read every 5 s); several workers in one process show the same figures.</Text>
    </Page>
  );
}
