import { graphql } from "../gql";

/** One message per event: kept for API clients; the pages use the batched feeds below. */
export const JobEventsSub = graphql(`
  subscription JobEvents($filter: EventFilterInput) {
    jobEvents(filter: $filter) {
      id
      type
      time
      jobId
      queue
      jobType
      errorType
      data
    }
  }
`);

/** Events gathered by the server over a short window: one GraphQL execution and one message per
 * batch instead of per event (what keeps a flood of 1,000 jobs/s from backing up the socket). */
export const JobEventBatchesSub = graphql(`
  subscription JobEventBatches($filter: EventFilterInput) {
    jobEventBatches(filter: $filter) {
      events {
        id
        type
        time
        jobId
        queue
        jobType
        errorType
        data
      }
    }
  }
`);

/** What the Jobs page needs to move its rows' statuses: the event's type, job and data (the
 * submitted status), in short windows. Each selected field costs the server one resolver call per
 * event (graphql-core), so this is a third of the full event's price under a flood; the 20 ms
 * window (the default is 50) keeps the batching well under a frame of the commit -> DOM budget
 * (bench/dashboard_latency.py, docs/dashboard.md). */
export const JobStatusEventsSub = graphql(`
  subscription JobStatusEvents($filter: EventFilterInput) {
    jobEventBatches(filter: $filter, windowMs: 20) {
      events {
        type
        jobId
        data
      }
    }
  }
`);

/** "Something happened" for pages that re-read on events: only the count, so the server does
 * not even build the events. */
export const JobEventPulseSub = graphql(`
  subscription JobEventPulse($filter: EventFilterInput) {
    jobEventBatches(filter: $filter, windowMs: 250) {
      count
    }
  }
`);
