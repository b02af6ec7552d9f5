import { useState } from "react";
import { Code, Group, Progress, Stack, Text, Title } from "@mantine/core";
import type { JobProgressDetailFragment } from "../gql/graphql";
import { useLiveBatches } from "../live/useLive";
import { fmtTime } from "../ui/format";
import { JobProgressSub } from "./documents";

/** What the running attempt reports with ctx.progress / ctx.log: the bar and the last log lines,
 * live through `jobProgress` while the job runs (the subscription is paused otherwise; the
 * stored report still shows). */
export function JobProgressPanel({ jobId, initial, running }: {
  jobId: string;
  initial: JobProgressDetailFragment | null | undefined;
  running: boolean;
}) {
  const [live, setLive] = useState<JobProgressDetailFragment | null>(null);
  useLiveBatches(JobProgressSub, { jobId }, (batch) => {
    const last = batch[batch.length - 1]?.jobProgress;
    if (last) setLive(last);
  }, { pause: !running });
  // the newer of the two: a job re-read after the last live report carries it too
  const p = live && live.jobId === jobId && (!initial || live.updatedAt >= initial.updatedAt) ? live : initial;
  if (!p) return null;
  const pct = p.fraction == null ? null : Math.round(p.fraction * 100);
  return (
    <Stack gap="xs">
      <Title order={3} size="h5">Progress (attempt {p.attempt})</Title>
      {pct != null && (
        <Group gap="sm" wrap="nowrap">
          <Progress value={pct} aria-label="Job progress" style={{ flex: 1 }} animated={running} />
          <Text size="sm">{pct}%</Text>
        </Group>
      )}
      {p.message && <Text size="sm">{p.message}</Text>}
      {p.logs.length > 0 && (
        // focusable: the log may scroll, and a scrolling region must be reachable by keyboard
        <Code block tabIndex={0} aria-label="Job log"
          style={{ maxHeight: 240, overflow: "auto", whiteSpace: "pre-wrap", overflowWrap: "anywhere" }}>
          {p.logsDropped > 0 && `… ${p.logsDropped} earlier lines not kept\n`}
          {p.logs.map((l) => `${fmtTime(l.time)}  ${l.message}`).join("\n")}
        </Code>
      )}
    </Stack>
  );
}
