import { lazy, Suspense, useEffect, useState, type FormEvent } from "react";
import { Anchor, Badge, Button, Group, List, Paper, SimpleGrid, Stack, Text, TextInput, Title } from "@mantine/core";
import { Link, useSearchParams } from "react-router";
import { useQuery } from "urql";
import { ErrorNote } from "../ui/Errors";
import { Page } from "../ui/Page";
import { CriticalPathQuery } from "./documents";
import { withParams } from "./range";
import { DataTable, Figure, fmtDuration, Loading, useDataMark } from "./ui";

const DagGraph = lazy(() => import("./DagGraph"));

/** Dependencies: a job's DAG with its critical path (the chain that decided when the last job
 * finished) highlighted, and the bottlenecks on it. */
export default function DependenciesPage() {
  const [params, setParams] = useSearchParams();
  const jobId = params.get("job")?.trim() || null;
  const [text, setText] = useState(jobId ?? "");
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => setText(jobId ?? ""), [jobId]);
  const [{ data, fetching, error }] = useQuery({ query: CriticalPathQuery, variables: { jobId: jobId ?? "" }, pause: !jobId });
  const cp = jobId ? data?.criticalPath : undefined;
  useDataMark("dependencies", !!cp);
  const pick = (id: string) => setParams(withParams(params, { job: id }));
  function submit(e: FormEvent) {
    e.preventDefault();
    const id = text.trim();
    if (!id) {
      setProblem("Enter a job id.");
      return;
    }
    setProblem(null);
    pick(id);
  }
  const byId = new Map((cp?.nodes ?? []).map((n) => [n.jobId, n]));
  return (
    <Page title="Dependencies">
      <Paper withBorder p="xs" component="section" aria-label="Job">
        <form onSubmit={submit} aria-label="Show a job's critical path" noValidate>
          <Group align="flex-start" gap="xs">
            <TextInput label="Job id" value={text} onChange={(e) => setText(e.currentTarget.value)} error={problem} w={380} size="xs"
              description="any job of the graph: its whole DAG is drawn" required />
            <Button type="submit" size="xs" mt={22}>Show critical path</Button>
          </Group>
        </form>
      </Paper>
      {!jobId && (
        <Paper withBorder p="xl" role="status">
          <Text fw={600}>Enter a job id to see its dependency graph.</Text>
          <Text size="sm" c="dimmed">Jobs submitted with <code>dependsOn</code> form a DAG; the critical path is the longest chain of wait + run time through it.</Text>
        </Paper>
      )}
      <ErrorNote error={jobId ? error : undefined} />
      {jobId && fetching && !data && <Loading />}
      {cp && (
        <Stack>
          <SimpleGrid cols={{ base: 2, md: 4 }}>
            <Figure label="Jobs in the graph" value={String(cp.nodes.length)} />
            <Figure label="Critical path length" value={`${cp.path.length} jobs`} />
            <Figure label="Critical path time" value={fmtDuration(cp.totalMs)} />
            <Figure label="Bottlenecks" value={String(cp.bottlenecks.length)} />
          </SimpleGrid>
          <Paper withBorder p="sm" component="figure" m={0} aria-label={`Dependency graph of job ${cp.jobId}`}>
            <Title order={2} size="h4" component="figcaption">
              Dependency graph <Badge variant="outline" color="orange" ml="xs">★ critical path</Badge>
            </Title>
            {/* The drawing has its own controls (zoom, nodes to pick), so it is not an image; the
                ordered list and the table below carry the same facts for screen readers. */}
            <Text size="xs" c="dimmed">{cp.nodes.length} jobs, {cp.edges.length} dependencies; click a job to centre on it. The critical path is listed below.</Text>
            <Suspense fallback={<Loading />}>
              <DagGraph cp={cp} onPick={pick} />
            </Suspense>
          </Paper>
          <SimpleGrid cols={{ base: 1, lg: 2 }}>
            <Paper withBorder p="sm" component="section" aria-labelledby="cp-list">
              <Title order={2} size="h4" id="cp-list">Critical path</Title>
              {cp.path.length === 0 ? <Text size="sm" c="dimmed">No finished chain yet.</Text> : (
                <List type="ordered" mt="xs" aria-label="Critical path, first job first">
                  {cp.path.map((id) => {
                    const n = byId.get(id);
                    return (
                      <List.Item key={id}>
                        <Anchor component={Link} to={`/jobs/${id}`}>{n?.jobType ?? id}</Anchor>
                        <Text span size="sm" c="dimmed"> · {n?.queue} · waited {fmtDuration(n?.waitMs)} · ran {fmtDuration(n?.durationMs)} · {n?.status.toLowerCase()}</Text>
                      </List.Item>
                    );
                  })}
                </List>
              )}
            </Paper>
            <Paper withBorder p="sm" component="section" aria-labelledby="bottlenecks">
              <Title order={2} size="h4" id="bottlenecks">Bottlenecks</Title>
              <DataTable caption="Bottlenecks" hideCaption rows={cp.bottlenecks} rowKey={(b, i) => `${b.jobId}-${i}`} empty="No bottleneck: nothing on the path stands out."
                columns={[
                  { label: "Job", value: (b) => <Anchor component={Link} to={`/jobs/${b.jobId}`}>{b.jobType}</Anchor> },
                  { label: "Why", value: (b) => b.reason },
                  { label: "Time", value: (b) => fmtDuration(b.ms), numeric: true },
                ]} />
            </Paper>
          </SimpleGrid>
        </Stack>
      )}
    </Page>
  );
}
