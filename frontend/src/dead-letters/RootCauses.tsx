import { useState } from "react";
import { Badge, Button, Group, Modal, Paper, Stack, Table, Text, Title, VisuallyHidden } from "@mantine/core";
import { useMutation, useQuery } from "urql";
import { ErrorNote } from "../ui/Errors";
import { fmtNum, fmtTime } from "../ui/format";
import { DlqInsightsQuery, RetryDlqGroup } from "./documents";

interface Props {
  queue: string | null;
  jobType: string | null;
  /** Called after a group was retried (the page's list and count change). */
  onRetried: (message: string) => void;
}

/** The DLQ's root causes: dead letters grouped by error template, with the evidence for
 *  whether retrying helps and a retry that acts on exactly one group. */
export function RootCauses({ queue, jobType, onRetried }: Props) {
  const [res, refetch] = useQuery({ query: DlqInsightsQuery, variables: { queue, jobType } });
  const [retryRes, retry] = useMutation(RetryDlqGroup);
  const [confirm, setConfirm] = useState<{ groupId: string; count: number; template: string } | null>(null);
  const data = res.data?.dlqInsights;

  async function run() {
    if (!confirm) return;
    const r = await retry({ groupId: confirm.groupId, queue, jobType });
    setConfirm(null);
    if (!r.error) onRetried(`Retried ${fmtNum(r.data?.retryDlqGroup?.count ?? 0)} jobs of one root cause.`);
    refetch({ requestPolicy: "network-only" });
  }

  return (
    <Paper withBorder p="sm" component="section" aria-labelledby="root-causes">
      <Group justify="space-between" mb="xs">
        <Title order={2} size="h4" id="root-causes">Root causes</Title>
        {data && (
          <Text size="sm" c="dimmed">
            {data.complete ? `All ${fmtNum(data.analyzed)} dead letters grouped` : `The newest ${fmtNum(data.analyzed)} dead letters grouped`}
          </Text>
        )}
      </Group>
      <ErrorNote error={res.error ?? retryRes.error} />
      {data && data.groups.length === 0 && <Text size="sm" c="dimmed">No dead letters to group.</Text>}
      {data && data.groups.length > 0 && (
        <Table aria-label="Root-cause groups" verticalSpacing="xs">
          <Table.Thead>
            <Table.Tr>
              <Table.Th scope="col">Error template</Table.Th>
              <Table.Th scope="col">Jobs</Table.Th>
              <Table.Th scope="col">Job types</Table.Th>
              <Table.Th scope="col">Retry helps?</Table.Th>
              <Table.Th scope="col">Suggestion</Table.Th>
              <Table.Th scope="col">Last seen</Table.Th>
              <Table.Th scope="col"><VisuallyHidden>Action</VisuallyHidden></Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {data.groups.map((g) => (
              <Table.Tr key={g.groupId}>
                <Table.Td>
                  <Text size="xs" c="dimmed">{g.errorTypes.join(", ")}</Text>
                  <Text size="sm" ff="monospace">{g.template}</Text>
                </Table.Td>
                <Table.Td>{fmtNum(g.count)}</Table.Td>
                <Table.Td>{g.jobTypes.join(", ")}</Table.Td>
                <Table.Td>
                  <Badge color={g.retryable ? "green" : "red"} variant="light">{g.retryable ? "likely" : "unlikely"}</Badge>
                  <Text size="xs" c="dimmed" maw={260}>{g.evidence}</Text>
                </Table.Td>
                <Table.Td style={{ maxWidth: 420 }}><Text size="sm">{g.suggestion}</Text></Table.Td>
                <Table.Td>{fmtTime(g.lastSeen)}</Table.Td>
                <Table.Td>
                  <Button size="xs" variant="light" aria-label={`Retry group: ${g.count} jobs of ${g.template}`} onClick={() => setConfirm({ groupId: g.groupId, count: g.count, template: g.template })}>
                    Retry group
                  </Button>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <Modal opened={!!confirm} onClose={() => setConfirm(null)} title="Retry one root cause">
        <Stack>
          <Text>Retry the {fmtNum(confirm?.count ?? 0)} dead-lettered jobs failing with:</Text>
          <Text ff="monospace" size="sm">{confirm?.template}</Text>
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setConfirm(null)}>Cancel</Button>
            <Button onClick={run} loading={retryRes.fetching}>Retry {confirm?.count ?? 0} jobs</Button>
          </Group>
        </Stack>
      </Modal>
    </Paper>
  );
}
