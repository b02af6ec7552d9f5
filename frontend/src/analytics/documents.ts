// One query per analytics page (issue 16). Every page reads `analytics(from, to, queue, jobType)`;
// the range and filters come from the URL (./range.ts). Generated types: ./gql (npm run codegen).
import { graphql } from "./gql";

export const SummaryQuery = graphql(`
  query AnalyticsSummary($from: DateTime!, $to: DateTime!, $queue: String, $jobType: String, $interval: String!) {
    analytics(from: $from, to: $to, queue: $queue, jobType: $jobType) {
      summary {
        processed { value previous change }
        succeeded { value previous change }
        failed { value previous change }
        deadLettered { value previous change }
        successRate { value previous change }
        avgDurationMs { value previous change }
        p50Ms { value previous change }
        p95Ms { value previous change }
        p99Ms { value previous change }
      }
      topIssues(limit: 3) { kind title detail queue jobType impact link }
      throughput(interval: $interval) { at submitted started completed failed deadLettered }
    }
  }
`);

/** The executive summary's AI panels: the top issues of the range (ranked by jobs at stake,
 * docs/ai.md) and the anomaly episodes detected in it. A query of its own, so a failure here
 * leaves the big numbers standing. */
export const SummaryAiQuery = graphql(`
  query AnalyticsSummaryAi($fromMs: Float!, $toMs: Float!, $from: DateTime!, $to: DateTime!, $queue: String) {
    aiTopIssues(fromMs: $fromMs, toMs: $toMs) {
      issues { kind title detail queue jobType impactJobs impactSlaMinutes link narrated }
    }
    anomalies(from: $from, to: $to, queue: $queue) {
      id metric queue detectedAt endedAt currentValue baseline peakScore possibleCauses causesSummary
    }
  }
`);

export const QueuesDeepDiveQuery = graphql(`
  query AnalyticsQueues($from: DateTime!, $to: DateTime!, $queue: String, $jobType: String) {
    all: analytics(from: $from, to: $to) {
      queuesHealth {
        queue
        depth { at value }
        oldestPendingAgeMs { at value }
        currentDepth
        currentOldestPendingAgeMs
        throughputPerMinute
        utilization
        estimatedClearMs
      }
    }
    selected: analytics(from: $from, to: $to, queue: $queue, jobType: $jobType) {
      durations(metric: "duration") {
        count p50Ms p95Ms p99Ms
        histogram { lowerMs upperMs count }
        byJobType { queue jobType count avgMs p50Ms p95Ms p99Ms }
      }
    }
  }
`);

export const FailuresQuery = graphql(`
  query AnalyticsFailures($from: DateTime!, $to: DateTime!, $queue: String, $jobType: String, $interval: String!) {
    analytics(from: $from, to: $to, queue: $queue, jobType: $jobType) {
      summary { failed { value previous change } deadLettered { value previous change } }
      failures {
        errorTypes { errorType count share }
        trend(interval: $interval) { at failed finished rate }
        topJobTypes(limit: 10) { queue jobType failed finished rate }
        timeToFailure { lowerMs upperMs count }
      }
    }
  }
`);

export const RetriesQuery = graphql(`
  query AnalyticsRetries($from: DateTime!, $to: DateTime!, $queue: String, $jobType: String) {
    analytics(from: $from, to: $to, queue: $queue, jobType: $jobType) {
      retries {
        byJobType { queue jobType jobs retries avgRetries wastedComputeSeconds }
        byAttempt { attempt completed failed successRate }
        wastedComputeSeconds
      }
    }
  }
`);

export const ResourcesQuery = graphql(`
  query AnalyticsResources($from: DateTime!, $to: DateTime!) {
    analytics(from: $from, to: $to) {
      resources {
        workerCount { at value }
        utilization { at value }
        idleRatio
        perWorker { workerId cpuPct rssBytes }
        crashes
        crashRatePerHour
        redisMemoryBytes { at value }
        postgresBytes { at value }
        tables { table bytes }
        eventLag { subject points { at value } }
      }
    }
  }
`);

export const CostQuery = graphql(`
  query AnalyticsCost($from: DateTime!, $to: DateTime!, $queue: String, $jobType: String, $groupBy: String!) {
    analytics(from: $from, to: $to, queue: $queue, jobType: $jobType) {
      cost(groupBy: $groupBy) {
        groupBy
        rows { key jobs workerHours cost costPerJob }
        mostExpensiveJobTypes { key jobs workerHours cost costPerJob }
        totalCost
        storageGrowthBytesPerDay
        projectedMonthlyCost
        defaultPricePerWorkerHour
      }
    }
  }
`);

export const SlaQuery = graphql(`
  query AnalyticsSla($from: DateTime!, $to: DateTime!, $queue: String, $jobType: String) {
    analytics(from: $from, to: $to, queue: $queue, jobType: $jobType) {
      sla { queue objective targetMs metric compliance met violations trend { at compliance } }
    }
  }
`);

export const CriticalPathQuery = graphql(`
  query AnalyticsCriticalPath($jobId: ID!) {
    criticalPath(jobId: $jobId) {
      jobId
      nodes { jobId jobType queue status startedAt completedAt durationMs waitMs onCriticalPath }
      edges { from to }
      path
      totalMs
      bottlenecks { jobId jobType reason ms }
    }
  }
`);

export const SetQueueCost = graphql(`
  mutation SetQueueCost($queue: String!, $pricePerWorkerHour: Float!) {
    setQueueCost(queue: $queue, pricePerWorkerHour: $pricePerWorkerHour) { queue pricePerWorkerHour }
  }
`);

export const SetQueueSla = graphql(`
  mutation SetQueueSla($queue: String!, $objective: Float!, $targetMs: Float!, $metric: String!) {
    setQueueSla(queue: $queue, objective: $objective, targetMs: $targetMs, metric: $metric) { queue objective targetMs metric }
  }
`);

/** Suggestions for the queue / job-type filters (small, cached across the analytics pages). */
export const FilterOptionsQuery = graphql(`
  query AnalyticsFilterOptions {
    queueMetrics { name }
    jobTypes { jobType queue }
  }
`);
