import { useMemo } from "react";
import { Anchor, Badge, Group, Paper, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { Link } from "react-router";
import { useQuery } from "urql";
import { SummaryAiQuery, SummaryQuery } from "./documents";
import { intervalOf, variablesOf } from "./range";
import {
  AnalyticsFrame, barOption, ChartFigure, COLORS, fmtAt, fmtCount, fmtDuration, fmtPct, previousName, Stat, useDataMark, useView,
} from "./ui";

const KIND_COLOR: Record<string, string> = { failure_spike: "red", slowdown: "orange", backlog: "yellow", sla: "grape", dead_letters: "grape", anomaly: "red", slow_job_type: "orange", retry_storm: "pink" };

/** Executive summary: the period's big numbers against the previous period, the three issues
 * most worth a look, and throughput over the range. */
export default function SummaryPage() {
  const [view, , update] = useView();
  const interval = intervalOf(view);
  const [{ data, fetching, error }] = useQuery({
    query: SummaryQuery, variables: { ...variablesOf(view), interval }, pause: !!view.invalid,
  });
  const [ai] = useQuery({
    query: SummaryAiQuery,
    variables: { fromMs: Date.parse(view.from), toMs: Date.parse(view.to), from: view.from, to: view.to, queue: view.queue },
    pause: !!view.invalid,
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
          <TopIssuesPanel issues={ai.data?.aiTopIssues?.issues} error={ai.error?.message} />
          <AnomaliesPanel anomalies={ai.data?.anomalies} />
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

type AiIssue = { kind: string; title: string; detail: string; queue?: string | null; jobType?: string | null; impactJobs: number; impactSlaMinutes: number; link: string; narrated: boolean };

/** The AI top issues: ranked by jobs at stake (dead-letter groups, anomalies, SLA misses, slow
 * job types, retry storms), each with its impact and a link to investigate. */
export function TopIssuesPanel({ issues, error }: { issues: AiIssue[] | undefined; error?: string }) {
  return (
    <Paper withBorder p="sm" component="section" role="region" aria-labelledby="ai-top-issues">
      <Title order={2} size="h4" id="ai-top-issues">Top issues</Title>
      {error ? (
        <Text size="sm" c="red" mt="xs" role="alert">{error}</Text>
      ) : issues === undefined ? (
        <Text size="sm" c="dimmed" mt="xs">Loading…</Text>
      ) : issues.length === 0 ? (
        <Text size="sm" c="dimmed" mt="xs">No issue found in this range.</Text>
      ) : (
        <Stack component="ol" gap="xs" mt="xs" p={0} style={{ listStyle: "none" }}>
          {issues.map((i, n) => (
            <Paper key={`${i.kind}-${i.queue}-${i.jobType}-${n}`} component="li" withBorder p="sm" aria-label={`Top issue ${n + 1}: ${i.title}`}>
              <Group justify="space-between" wrap="nowrap" align="flex-start">
                <div>
                  <Group gap="xs">
                    <Badge color={KIND_COLOR[i.kind] ?? "gray"} variant="light">{i.kind.replace(/_/g, " ")}</Badge>
                    <Text fw={600}>{i.title}</Text>
                  </Group>
                  <Text size="sm" mt={4}>{i.detail}</Text>
                  <Text size="xs" c="dimmed">{impactText(i)}</Text>
                </div>
                <IssueLink link={i.link} title={i.title} />
              </Group>
            </Paper>
          ))}
        </Stack>
      )}
    </Paper>
  );
}

/** "Impact: 30 jobs at stake · 2.4 SLA minutes" */
function impactText(i: { impactJobs: number; impactSlaMinutes: number }): string {
  const jobs = `${fmtCount(i.impactJobs)} job${i.impactJobs === 1 ? "" : "s"} at stake`;
  return `Impact: ${jobs}` + (i.impactSlaMinutes > 0 ? ` · ${i.impactSlaMinutes.toFixed(1)} SLA minutes` : "");
}

type AiAnomaly = { id: number; metric: string; queue: string; detectedAt: string; endedAt?: string | null; currentValue: number; baseline: number; peakScore: number; possibleCauses: string[]; causesSummary?: string | null };

/** Anomaly episodes detected in the range, newest first. */
export function AnomaliesPanel({ anomalies }: { anomalies: AiAnomaly[] | undefined }) {
  if (anomalies === undefined) return null;
  const recent = [...anomalies].sort((x, y) => y.detectedAt.localeCompare(x.detectedAt)).slice(0, 10);
  return (
    <Paper withBorder p="sm" component="section" role="region" aria-labelledby="ai-anomalies">
      <Title order={2} size="h4" id="ai-anomalies">Recent anomalies</Title>
      {recent.length === 0 ? (
        <Text size="sm" c="dimmed" mt="xs">No anomaly detected in this range.</Text>
      ) : (
        <Stack component="ul" gap={4} mt="xs" p={0} style={{ listStyle: "none" }}>
          {recent.map((x) => (
            <li key={x.id} aria-label={`Anomaly: ${x.metric.replace(/_/g, " ")} on ${x.queue}`}>
              <Text size="sm">
                <Text span fw={600}>{x.metric.replace(/_/g, " ")}</Text> on {x.queue} · {new Date(x.detectedAt).toISOString().slice(0, 16).replace("T", " ")} UTC
                {x.endedAt ? "" : " · ongoing"} · {fmtNumber(x.currentValue)} vs baseline {fmtNumber(x.baseline)} (score {x.peakScore})
              </Text>
              {(x.causesSummary || x.possibleCauses.length > 0) && (
                <Text size="xs" c="dimmed">{x.causesSummary ?? x.possibleCauses.join("; ")}</Text>
              )}
            </li>
          ))}
        </Stack>
      )}
    </Paper>
  );
}

function fmtNumber(v: number): string {
  return Math.abs(v) < 10 ? v.toFixed(3).replace(/\.?0+$/, "") : fmtCount(v);
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
