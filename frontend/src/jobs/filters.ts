import type { JobFilter, JobStatus } from "../gql/graphql";

export const STATUSES: JobStatus[] = ["WAITING", "PENDING", "SCHEDULED", "PROCESSING", "COMPLETED", "FAILED", "DEAD_LETTER", "CANCELLED"];

/** The URL is the state: every filter lives in the query string so a view can be shared. */
export const FILTER_KEYS = ["queue", "status", "type", "errorType", "from", "to", "payload", "q"] as const;
export type FilterKey = (typeof FILTER_KEYS)[number];

export function filterFromParams(p: URLSearchParams): { filter: JobFilter; payloadError: string | null } {
  const f: JobFilter = {};
  let payloadError: string | null = null;
  const v = (k: FilterKey) => p.get(k)?.trim() || null;
  if (v("queue")) f.queue = v("queue");
  const st = v("status")?.toUpperCase();
  if (st && (STATUSES as string[]).includes(st)) f.status = st as JobStatus;
  if (v("type")) f.jobType = v("type");
  if (v("errorType")) f.errorType = v("errorType");
  if (v("from")) f.createdFrom = new Date(v("from")!).toISOString();
  if (v("to")) f.createdTo = new Date(v("to")!).toISOString();
  if (v("q")) f.search = v("q");
  const payload = v("payload");
  if (payload) {
    try {
      const parsed: unknown = JSON.parse(payload);
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
      f.payloadMatch = parsed;
    } catch {
      payloadError = 'Payload must be a JSON object, e.g. {"userId": 123}';
    }
  }
  return { filter: f, payloadError };
}
