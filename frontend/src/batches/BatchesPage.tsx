import { Badge, Progress, Table, Text, Tooltip } from "@mantine/core";
import { Link } from "react-router";
import { useQuery } from "urql";
import { graphql } from "../gql";
import { JobEventPulseSub } from "../live/documents";
import { useLiveBatches } from "../live/useLive";
import { ErrorNote } from "../ui/Errors";
import { fmtTime, shortId } from "../ui/format";
import { Page } from "../ui/Page";

export const BatchesQuery = graphql(`
  query Batches {
    recentBatches(first: 50) { id name total completed failed pending processing status createdAt completedAt onCompleteJobId }
  }
`);

export function BatchesPage() {
  const [{ data, error }, refetch] = useQuery({ query: BatchesQuery });
  useLiveBatches(JobEventPulseSub, {}, () => refetch({ requestPolicy: "network-only" }), { minIntervalMs: 2000 });
  const rows = data?.recentBatches ?? [];
  return (
    <Page title="Batches">
      <ErrorNote error={error} />
      <Table striped withTableBorder aria-label="Batches">
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">Batch</Table.Th>
            <Table.Th scope="col">Status</Table.Th>
            <Table.Th scope="col" w="35%">Progress</Table.Th>
            <Table.Th scope="col">Counts</Table.Th>
            <Table.Th scope="col">Created</Table.Th>
            <Table.Th scope="col">On complete</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.map((b) => {
            const pct = (n: number) => (b.total ? (100 * n) / b.total : 0);
            return (
              <Table.Tr key={b.id}>
                <Table.Th scope="row">{b.name} <Text span size="xs" c="dimmed" ff="monospace">{shortId(b.id)}</Text></Table.Th>
                <Table.Td><Badge color={b.status === "completed" ? "green" : b.status === "running" ? "blue" : "red"}>{b.status.replaceAll("_", " ")}</Badge></Table.Td>
                <Table.Td>
                  <Tooltip label={`${b.completed} completed, ${b.failed} failed, ${b.processing} processing, ${b.pending} pending of ${b.total}`}>
                    <Progress.Root size="lg" aria-label={`Batch ${b.name} progress`}>
                      <Progress.Section value={pct(b.completed)} color="green" />
                      <Progress.Section value={pct(b.failed)} color="red" />
                      <Progress.Section value={pct(b.processing)} color="yellow" />
                    </Progress.Root>
                  </Tooltip>
                </Table.Td>
                <Table.Td><Text size="sm">{b.completed + b.failed}/{b.total} done</Text></Table.Td>
                <Table.Td>{fmtTime(b.createdAt)}</Table.Td>
                <Table.Td>{b.onCompleteJobId ? <Link to={`/jobs/${b.onCompleteJobId}`}>{shortId(b.onCompleteJobId)}</Link> : "—"}</Table.Td>
              </Table.Tr>
            );
          })}
        </Table.Tbody>
      </Table>
      {rows.length === 0 && <Text c="dimmed">No batches yet.</Text>}
    </Page>
  );
}
