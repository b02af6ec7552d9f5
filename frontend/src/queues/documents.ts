import { graphql } from "../gql";

export const QueueMetricsQuery = graphql(`
  query QueueMetrics {
    queueMetrics {
      name
      ready
      delayed
      leased
      paused
      maxInFlight
      rateLimit { limit windowMs }
      oldestPendingAgeMs
      throughputPerMin
      failedPerMin
      failureRate
      avgDurationMs
      health
    }
    workers { id queues status }
  }
`);

export const QueueCountsQuery = graphql(`
  query QueueCounts {
    queues {
      name
      counts { waiting pending scheduled processing completed failed deadLetter cancelled }
      controls { name paused maxInFlight rateLimit { limit windowMs } }
    }
  }
`);

export const QueueTodayQuery = graphql(`
  query QueueToday($queue: String!, $from: DateTime!) {
    throughputSeries(queue: $queue, from: $from) { minuteMs completed failed }
  }
`);

export const PauseQueue = graphql(`
  mutation PauseQueue($queue: String!) { pauseQueue(queue: $queue) { name paused } }
`);
export const ResumeQueue = graphql(`
  mutation ResumeQueue($queue: String!) { resumeQueue(queue: $queue) { name paused } }
`);
export const SetRateLimit = graphql(`
  mutation SetRateLimit($queue: String!, $limit: Int, $windowMs: Int!) {
    setRateLimit(queue: $queue, limit: $limit, windowMs: $windowMs) { name rateLimit { limit windowMs } }
  }
`);
export const SetConcurrency = graphql(`
  mutation SetConcurrency($queue: String!, $maxInFlight: Int) {
    setConcurrency(queue: $queue, maxInFlight: $maxInFlight) { name maxInFlight }
  }
`);

// Types with jobs waiting and no live worker serving them (docs/job-types.md). The server counts
// waiting jobs only for unserved types, capped, so this stays cheap to poll with the counts.
export const UnservedJobTypesQuery = graphql(`
  query UnservedJobTypes {
    jobTypes { jobType queue served unservedJobs unservedQueues }
  }
`);
