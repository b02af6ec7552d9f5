import type { JobStatus } from "../gql/graphql";

/** The status an event moves its job to, when the event alone says so (docs/events.md). */
export function statusAfter(type: string, data: unknown): JobStatus | null {
  switch (type) {
    case "jobs.started":
      return "PROCESSING";
    case "jobs.completed":
      return "COMPLETED";
    case "jobs.dead_letter":
      return "DEAD_LETTER";
    case "jobs.cancelled":
      return "CANCELLED";
    case "jobs.retries":
      return "PENDING";
    case "jobs.submitted": {
      const s = (data as { status?: string } | null)?.status;
      return s ? (s.toUpperCase() as JobStatus) : "PENDING";
    }
    default:
      return null;
  }
}
