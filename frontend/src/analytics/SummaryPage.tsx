import { useMemo } from "react";
import { Anchor, Badge, Group, Paper, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { Link } from "react-router";
import { useQuery } from "urql";
import { SummaryQuery } from "./documents";
import { intervalOf, variablesOf } from "./range";
import {
  AnalyticsFrame, barOption, ChartFigure, COLORS, fmtAt, fmtCount, fmtDuration, fmtPct, previousName, Stat, useDataMark, useView,
} from "./ui";

const KIND_COLOR: Record<string, string> = { failure_spike: "red", slowdown: "orange", backlog: "yellow", sla: "grape", dead_letters: "grape" };

/** Executive summary: the period's big numbers against the previous period, the three issues
 * most worth a look, and throughput over the range. */
export default function SummaryPage() {
  const [view, , update] = useView();
  const interval = intervalOf(view);
  const [{ data, fetching, error }] = useQuery({
    query: SummaryQuery, variables: { ...variablesOf(view), interval }, pause: !!view.invalid,
  });
  const a = data?.analytics;
  const s = a?.summary;
  const empty = !!a && !s?.processed.value && !s?.failed.value && a.throughput.every((b) => b.submitted + b.completed + b.failed === 0);
  useDataMark("summary", !!a);
  const prev = previousName(view);
  const chart = useMemo(() => {
    const t = a?.throughput ?? [];
    return barOption(t.map((b) => fmtAt(b.at, interval)), [
      { name: "completed", data: t.map((b) => b.completed), color: COLORS.ok, stack: "done" },
      { name: "dead-lettered", data: t.map((b) => b.deadLettered), color: COLORS.dlq, stack: "done" },
      { name: "failed attempts", data: t.map((b) => b.failed), color: COLORS.bad },
      { name: "submitted", data: t.map((b) => b.submitted), color: COLORS.info },
    ], "jobs");
  }, [a, interval]);
  return (
    <AnalyticsFrame title="Executive summary" view={view} update={update} fetching={fetching && !data} error={error} empty={empty}
      emptyText="No job was submitted, run or finished in this range.">
      {s && a && (
        <Stack>
          <SimpleGrid cols={{ base: 2, md: 4 }}>
            <Stat label="Jobs processed" trend={s.processed} format={fmtCount} previous={prev} />
            <Stat label="Success rate" trend={s.successRate} format={(x) => fmtPct(x, 2)} previous={prev} />
            <Stat label="Failed attempts" trend={s.failed} format={fmtCount} better="down" previous={prev} />
            <Stat label="Dead-lettered" trend={s.deadLettered} format={fmtCount} better="down" previous={prev} />
            <Stat label="Average duration" trend={s.avgDurationMs} format={fmtDuration} better="down" previous={prev} />
            <Stat label="p50 duration" trend={s.p50Ms} format={fmtDuration} better="down" previous={prev} />
            <Stat label="p95 duration" trend={s.p95Ms} format={fmtDuration} better="down" previous={prev} />
            <Stat label="p99 duration" trend={s.p99Ms} format={fmtDuration} better="down" previous={prev} />
          </SimpleGrid>
          <Paper withBorder p="sm" component="section" aria-labelledby="top-issues">
            <Title order={2} size="h4" id="top-issues">Needs attention</Title>
            {a.topIssues.length === 0 ? (
              <Text size="sm" c="dimmed" mt="xs">Nothing stands out in this range.</Text>
            ) : (
              <Stack component="ol" gap="xs" mt="xs" p={0} style={{ listStyle: "none" }}>
                {a.topIssues.map((i, n) => (
                  <Paper key={`${i.kind}-${i.queue}-${i.jobType}-${n}`} component="li" withBorder p="sm" aria-label={`Issue ${n + 1}: ${i.title}`}>
                    <Group justify="space-between" wrap="nowrap" align="flex-start">
                      <div>
                        <Group gap="xs">
                          <Badge color={KIND_COLOR[i.kind] ?? "gray"} variant="light">{i.kind.replace(/_/g, " ")}</Badge>
                          <Text fw={600}>{i.title}</Text>
                        </Group>
                        <Text size="sm" mt={4}>{i.detail}</Text>
                        <Text size="xs" c="dimmed">
                          {[i.queue && `queue ${i.queue}`, i.jobType && `job type ${i.jobType}`].filter(Boolean).join(" · ")}
                        </Text>
                      </div>
                      <IssueLink link={i.link} title={i.title} />
                    </Group>
                  </Paper>
                ))}
              </Stack>
            )}
          </Paper>
          <ChartFigure
            title="Throughput"
            label={`Bar chart: jobs submitted, completed, dead-lettered and failed attempts per ${interval}`}
            option={chart}
            empty={a.throughput.length === 0 ? "No throughput in this range." : null}
            table={{
              rows: a.throughput,
              rowKey: (b) => b.at,
              columns: [
                { label: interval === "day" ? "Day" : "Time", value: (b) => fmtAt(b.at, interval) },
                { label: "Submitted", value: (b) => fmtCount(b.submitted), numeric: true },
                { label: "Started", value: (b) => fmtCount(b.started), numeric: true },
                { label: "Completed", value: (b) => fmtCount(b.completed), numeric: true },
                { label: "Failed attempts", value: (b) => fmtCount(b.failed), numeric: true },
                { label: "Dead-lettered", value: (b) => fmtCount(b.deadLettered), numeric: true },
              ],
            }}
          />
        </Stack>
      )}
    </AnalyticsFrame>
  );
}

/** A top issue's link. */
function IssueLink({ link, title }: { link: string; title: string }) {
  if (!link) return null;
  const label = `Investigate: ${title}`;
  // a dashboard path stays in the app (an API path, /api/..., is a plain link to its JSON)
  return link.startsWith("/") && !link.startsWith("/api/")
    ? <Anchor component={Link} to={link} size="sm" aria-label={label} style={{ whiteSpace: "nowrap" }}>Investigate →</Anchor>
    : <Anchor href={link} size="sm" aria-label={label} style={{ whiteSpace: "nowrap" }}>Investigate →</Anchor>;
}
