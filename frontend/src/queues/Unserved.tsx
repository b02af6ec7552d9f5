import { Alert, Badge, List, Text } from "@mantine/core";
import { fmtNum } from "../ui/format";

/** The server stops counting an unserved type's waiting jobs here (UNSERVED_COUNT_CAP in
 * jobline/shared/core/job_types.py). */
export const UNSERVED_COUNT_CAP = 10_000;

export interface UnservedType {
  jobType: string;
  queue?: string | null;
  served: boolean;
  unservedJobs: number;
  /** The queues its waiting jobs are in (a submission may name another queue than the
   * registered one, and a type nobody registered has none). */
  unservedQueues: string[];
}

/** Types with jobs waiting where no live worker with their handler claims (nobody runs the
 * type, or its workers listen to other queues): those jobs only wait (a worker without
 * the handler hands them back), so the page says so instead of leaving them looking pending. */
export function unservedOf(types: readonly UnservedType[] | undefined): UnservedType[] {
  return (types ?? []).filter((t) => t.unservedJobs > 0);
}

function jobs(n: number): string {
  return n >= UNSERVED_COUNT_CAP ? `${fmtNum(UNSERVED_COUNT_CAP)}+ jobs` : n === 1 ? "1 job" : `${fmtNum(n)} jobs`;
}

export function describeUnserved(t: UnservedType): string {
  const qs = t.unservedQueues;
  const where = qs.length === 0 ? "" : ` in ${qs.length === 1 ? "queue" : "queues"} ${qs.join(", ")}`;
  const never = t.queue ? "" : " (no worker has ever registered a handler for it)";
  return `${t.jobType}: ${jobs(t.unservedJobs)} waiting${where}, no running worker handles this type${t.served ? ` ${qs.length === 1 ? "there" : "in those queues"}` : ""}${never}`;
}

export function UnservedNotice({ types }: { types: UnservedType[] }) {
  if (types.length === 0) return null;
  return (
    <Alert role="alert" color="orange" variant="outline" title="Jobs waiting for a worker that is not running">
      <List size="sm">
        {types.map((t) => <List.Item key={t.jobType}>{describeUnserved(t)}</List.Item>)}
      </List>
      <Text size="sm" mt="xs">They wait (handed back, never dead-lettered for it) until a worker with the handler claims from the queue.</Text>
    </Alert>
  );
}

/** The marker in a queue's row: the unserved types with jobs waiting in that queue. */
export function UnservedMarker({ queue, types }: { queue: string; types: UnservedType[] }) {
  const mine = types.filter((t) => t.unservedQueues.includes(queue));
  if (mine.length === 0) return null;
  const names = mine.map((t) => t.jobType).join(", ");
  // Its own line under the health/state badge (that cell does not wrap), type names as written.
  return (
    <div>
      <Badge color="orange" variant="outline" tt="none" mt={4} title={mine.map(describeUnserved).join("; ")}>
        no worker: {names}
      </Badge>
    </div>
  );
}
