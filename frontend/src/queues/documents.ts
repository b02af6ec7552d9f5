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

// Capacity view (issue 17, items 3 and 6): admin only on the server. Both are queries: the
// scaling advice computes, it changes nothing.
export const ForecastQuery = graphql(`
  query QueueForecast($queue: String!, $horizonDays: Int!) {
    forecast(queue: $queue, horizonDays: $horizonDays) {
      queue horizonDays model capacityModel historyHours
      backtest { holdoutHours seasonHours maseProphet maseSeasonalNaive }
      points { at jobs lower upper }
      days { date jobs lower upper peakJobsPerHour workersNeeded busyWorkerHours cost }
      meanDurationMs waitTargetMs targetSource pricePerWorkerHour totalCost
    }
  }
`);

export const ScalingQuery = graphql(`
  query ScalingRecommendation($queue: String!, $targetLatencyMs: Int!, $pendingJobs: Int,
                              $averageJobDurationMs: Float, $currentWorkers: Int) {
    scalingRecommendation(queue: $queue, targetLatencyMs: $targetLatencyMs, pendingJobs: $pendingJobs,
                          averageJobDurationMs: $averageJobDurationMs, currentWorkers: $currentWorkers) {
      queue suggestedWorkers expectedWaitMs currentWorkers suggestedProcesses slotsPerProcess reasoning
      inputs { arrivalsPerMinute arrivalsSource averageJobDurationMs durationSource pendingJobs pendingSource targetLatencyMs serviceLevel }
    }
  }
`);
