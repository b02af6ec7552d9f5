import { lazy, Suspense, useState } from "react";
import { Alert, Button, Drawer, Group, Loader, SimpleGrid, Stack, Table, Text, Timeline, Title } from "@mantine/core";
import { useNavigate } from "react-router";
import { useMutation, useQuery } from "urql";
import type { JobDetailFragment } from "../gql/graphql";
import { useLiveBatches } from "../live/useLive";
import { ErrorNote } from "../ui/Errors";
import { JsonView } from "../ui/JsonView";
import { fmtMs, fmtTime } from "../ui/format";
import { StatusBadge } from "../ui/StatusBadge";
import { CancelJob, JobQuery, JobUpdatedSub, RetryJob } from "./documents";
import { JobProgressPanel } from "./JobProgress";

const DependencyGraph = lazy(() => import("./DependencyGraph"));

const TERMINAL = new Set(["COMPLETED", "FAILED", "DEAD_LETTER", "CANCELLED"]);
const RETRYABLE = new Set(["FAILED", "DEAD_LETTER"]);

function Field({ label, children }: { label: string; children: React.ReactNode }) {
  return (
    <div>
      <Text size="xs" c="dimmed" component="div">{label}</Text>
      <Text size="sm" component="div">{children}</Text>
    </div>
  );
}

export function JobDetails({ job, onSimilar }: { job: JobDetailFragment; onSimilar: () => void }) {
  const [retry, doRetry] = useMutation(RetryJob);
  const [cancel, doCancel] = useMutation(CancelJob);
  return (
    <Stack>
      <Group>
        <StatusBadge status={job.status} />
        <Text size="sm">{job.jobType} on <b>{job.queue}</b></Text>
      </Group>
      <Group>
        {RETRYABLE.has(job.status) && (
          <Button onClick={() => doRetry({ id: job.id })} loading={retry.fetching}>Retry</Button>
        )}
        {!TERMINAL.has(job.status) && (
          <Button color="red" variant="light" onClick={() => doCancel({ id: job.id })} loading={cancel.fetching}>Cancel</Button>
        )}
        <Button variant="default" onClick={onSimilar}>View similar</Button>
      </Group>
      <ErrorNote error={retry.error ?? cancel.error} />
      <SimpleGrid cols={2}>
        <Field label="Job id"><code>{job.id}</code></Field>
        <Field label="Attempts">{job.attempts} of {job.maxAttempts}</Field>
        <Field label="Priority">{job.priority}</Field>
        <Field label="Worker">{job.workerId ?? "—"}</Field>
        <Field label="Timeout">{fmtMs(job.timeoutMs)}</Field>
        <Field label="Batch">{job.batchId ?? "—"}</Field>
      </SimpleGrid>
      <Title order={3} size="h5">Timeline</Title>
      <Timeline active={job.completedAt ? 3 : job.startedAt ? 1 : 0} bulletSize={14} lineWidth={2}>
        <Timeline.Item title="Submitted"><Text size="xs">{fmtTime(job.createdAt)}</Text></Timeline.Item>
        <Timeline.Item title="Scheduled for"><Text size="xs">{fmtTime(job.scheduledFor)}</Text></Timeline.Item>
        <Timeline.Item title="Started"><Text size="xs">{fmtTime(job.startedAt)}</Text></Timeline.Item>
        <Timeline.Item title="Finished"><Text size="xs">{fmtTime(job.completedAt)}</Text></Timeline.Item>
      </Timeline>
      <Title order={3} size="h5">Payload</Title>
      <JsonView value={job.payload} label="Payload" />
      <JobProgressPanel jobId={job.id} initial={job.progress} running={job.status === "PROCESSING"} />
      <Title order={3} size="h5">Result</Title>
      {job.resultExpired
        ? <Text size="sm" c="dimmed">Result expired (removed after its time to live).</Text>
        : <JsonView value={job.result} label="Result" />}
      {job.error && (
        <Alert color="red" title={job.errorType ?? "Error"}>
          <Text size="sm" style={{ whiteSpace: "pre-wrap" }}>{job.error}</Text>
        </Alert>
      )}
      <Title order={3} size="h5">Attempts</Title>
      <Table withTableBorder aria-label="Attempt history">
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">#</Table.Th>
            <Table.Th scope="col">Worker</Table.Th>
            <Table.Th scope="col">Outcome</Table.Th>
            <Table.Th scope="col">Duration</Table.Th>
            <Table.Th scope="col">Error type</Table.Th>
            <Table.Th scope="col">Retry decision</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {job.attemptHistory.map((a) => (
            <Table.Tr key={a.attempt}>
              <Table.Td>{a.attempt}</Table.Td>
              <Table.Td>{a.workerId ?? "—"}</Table.Td>
              <Table.Td>{a.outcome}</Table.Td>
              <Table.Td>{fmtMs(a.durationMs)}</Table.Td>
              <Table.Td title={a.error ?? undefined}>{a.errorType ?? "—"}</Table.Td>
              <Table.Td>
                {a.retryDecision ? (
                  <>
                    <Text size="sm" fw={500}>
                      {a.retryDecision.retry ? `retry in ${fmtMs(a.retryDecision.delayMs)}` : "no retry"}
                      {a.retryDecision.successProbability != null &&
                        ` · ${Math.round(a.retryDecision.successProbability * 100)}% success`}
                    </Text>
                    <Text size="xs" c="dimmed">{a.retryDecision.reason}</Text>
                  </>
                ) : "—"}
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {job.attemptHistory.length === 0 && <Text size="sm" c="dimmed">No attempt yet.</Text>}
      {job.dependsOn.length > 0 && (
        <>
          <Title order={3} size="h5">Dependencies</Title>
          <Suspense fallback={<Loader size="sm" aria-label="Loading graph" />}>
            <DependencyGraph jobId={job.id} />
          </Suspense>
        </>
      )}
    </Stack>
  );
}

/** The job as a dialog named with its id, live through `jobUpdated`; the route is /jobs/<id>. */
export function JobDrawer({ jobId, onClose }: { jobId: string; onClose: () => void }) {
  const navigate = useNavigate();
  const [{ data, error, fetching }] = useQuery({ query: JobQuery, variables: { id: jobId } });
  const [live, setLive] = useState<JobDetailFragment | null>(null);
  useLiveBatches(JobUpdatedSub, { id: jobId }, (batch) => {
    const last = batch[batch.length - 1];
    if (last) setLive(last.jobUpdated);
  });
  const job = live && live.id === jobId ? live : data?.job;
  return (
    <Drawer opened onClose={onClose} position="right" size="xl" title={`Job ${jobId}`} closeButtonProps={{ "aria-label": "Close job" }}>
      <ErrorNote error={error} />
      {!job && fetching && <Loader aria-label="Loading job" />}
      {!job && !fetching && !error && <Text>No job with id {jobId}.</Text>}
      {job && (
        <JobDetails
          job={job}
          onSimilar={() => {
            // Similar = same type and the error it had (a retried job may have succeeded since).
            const p = new URLSearchParams({ type: job.jobType });
            const errorType = job.errorType ?? [...job.attemptHistory].reverse().find((a) => a.errorType)?.errorType;
            if (errorType) p.set("errorType", errorType);
            navigate(`/jobs?${p.toString()}`);
          }}
        />
      )}
    </Drawer>
  );
}
