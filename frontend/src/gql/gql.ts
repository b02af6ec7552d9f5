/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  query AlertRules {\n    alertRules {\n      id name builtin description severity enabled state stateSince lastValue lastEvaluatedAt\n      forS renotifyS channelIds alertId\n      condition { metric op threshold windowS targetMs minSamples }\n      scope { queue jobType }\n    }\n    alertChannels { id name kind enabled }\n  }\n": typeof types.AlertRulesDocument,
    "\n  query AlertChannels { alertChannels { id name kind config enabled } }\n": typeof types.AlertChannelsDocument,
    "\n  query AlertHistory($status: String, $ruleId: ID, $queue: String, $after: String) {\n    alerts(status: $status, ruleId: $ruleId, queue: $queue, first: 50, after: $after) {\n      firing nextCursor\n      alerts {\n        id ruleId ruleName severity status value peakValue summary startedAt firedAt resolvedAt\n        silenced acknowledgedAt acknowledgedBy\n        scope { queue jobType }\n        deliveries { id channelName kind recipient event status attempts error }\n      }\n    }\n  }\n": typeof types.AlertHistoryDocument,
    "\n  query FiringAlerts { alerts(status: \"firing\", first: 5) { firing alerts { id ruleName severity } } }\n": typeof types.FiringAlertsDocument,
    "\n  mutation CreateAlertRule($input: AlertRuleInput!) { createAlertRule(input: $input) { id } }\n": typeof types.CreateAlertRuleDocument,
    "\n  mutation UpdateAlertRule($id: ID!, $input: AlertRuleInput!) { updateAlertRule(id: $id, input: $input) { id enabled } }\n": typeof types.UpdateAlertRuleDocument,
    "\n  mutation DeleteAlertRule($id: ID!) { deleteAlertRule(id: $id) }\n": typeof types.DeleteAlertRuleDocument,
    "\n  mutation CreateAlertChannel($input: AlertChannelInput!) { createAlertChannel(input: $input) { id } }\n": typeof types.CreateAlertChannelDocument,
    "\n  mutation UpdateAlertChannel($id: ID!, $input: AlertChannelInput!) { updateAlertChannel(id: $id, input: $input) { id } }\n": typeof types.UpdateAlertChannelDocument,
    "\n  mutation DeleteAlertChannel($id: ID!) { deleteAlertChannel(id: $id) }\n": typeof types.DeleteAlertChannelDocument,
    "\n  mutation TestAlertChannel($id: ID!) { testAlertChannel(id: $id) { id status } }\n": typeof types.TestAlertChannelDocument,
    "\n  query AlertDelivery($id: ID!) { alertDelivery(id: $id) { id status attempts error } }\n": typeof types.AlertDeliveryDocument,
    "\n  mutation AcknowledgeAlert($id: ID!) { acknowledgeAlert(id: $id) { id acknowledgedAt } }\n": typeof types.AcknowledgeAlertDocument,
    "\n  mutation CreateAlertSilence($input: AlertSilenceInput!) { createAlertSilence(input: $input) { id endsAt } }\n": typeof types.CreateAlertSilenceDocument,
    "\n  query Viewer {\n    viewer {\n      role\n      name\n    }\n  }\n": typeof types.ViewerDocument,
    "\n  query Batches {\n    recentBatches(first: 50) { id name total completed failed pending processing status createdAt completedAt onCompleteJobId }\n  }\n": typeof types.BatchesDocument,
    "\n  query Charts($from: DateTime!, $weekFrom: DateTime!) {\n    queueMetrics { name }\n    week: throughputSeries(from: $weekFrom) { minuteMs submitted }\n    durationHistogram(from: $weekFrom) { total p50Ms p95Ms p99Ms buckets { lowerMs upperMs count } }\n    recent: throughputSeries(from: $from) { minuteMs completed failed }\n  }\n": typeof types.ChartsDocument,
    "\n  query QueueSeries($queue: String!, $from: DateTime!) {\n    throughputSeries(queue: $queue, from: $from) { minuteMs completed failed }\n  }\n": typeof types.QueueSeriesDocument,
    "\n  query DeadLetters($filter: DlqFilterInput, $first: Int!, $after: String) {\n    deadLetters(filter: $filter, first: $first, after: $after) {\n      jobs { id queue jobType errorType error attempts completedAt }\n      nextCursor\n    }\n    deadLetterCount(filter: $filter)\n  }\n": typeof types.DeadLettersDocument,
    "\n  query DeadLetterCount($filter: DlqFilterInput) { deadLetterCount(filter: $filter) }\n": typeof types.DeadLetterCountDocument,
    "\n  mutation RetryDeadLetters($filter: DlqFilterInput!) { retryDeadLetters(filter: $filter) { count } }\n": typeof types.RetryDeadLettersDocument,
    "\n  mutation DeleteDeadLetters($filter: DlqFilterInput!) { deleteDeadLetters(filter: $filter) { count } }\n": typeof types.DeleteDeadLettersDocument,
    "\n  query DlqInsights($queue: String, $jobType: String) {\n    dlqInsights(queue: $queue, jobType: $jobType) {\n      analyzed\n      complete\n      groups { groupId template count jobTypes queues errorTypes retryable evidence suggestion lastSeen }\n    }\n  }\n": typeof types.DlqInsightsDocument,
    "\n  mutation RetryDlqGroup($groupId: String!, $queue: String, $jobType: String) {\n    retryDlqGroup(groupId: $groupId, queue: $queue, jobType: $jobType) { count }\n  }\n": typeof types.RetryDlqGroupDocument,
    "\n  query Jobs($filter: JobFilter, $first: Int!, $after: String) {\n    jobs(filter: $filter, first: $first, after: $after) {\n      edges {\n        cursor\n        node { id queue jobType status attempts maxAttempts createdAt completedAt errorType error }\n      }\n      pageInfo { hasNextPage endCursor }\n    }\n  }\n": typeof types.JobsDocument,
    "\n  fragment JobProgressDetail on JobProgress {\n    jobId attempt fraction message logsDropped updatedAt\n    logs { time message }\n  }\n": typeof types.JobProgressDetailFragmentDoc,
    "\n  fragment JobDetail on Job {\n    id queue jobType status priority attempts maxAttempts payload result error errorType\n    createdAt startedAt completedAt scheduledFor timeoutMs idempotencyKey workerId batchId\n    resultExpired resultExpiresAt\n    attemptHistory {\n      attempt workerId startedAt finishedAt outcome errorType error durationMs\n      retryDecision { retry delayMs successProbability reason }\n    }\n    dependsOn { id }\n    progress { ...JobProgressDetail }\n  }\n": typeof types.JobDetailFragmentDoc,
    "\n  subscription JobProgress($jobId: ID!) {\n    jobProgress(jobId: $jobId) { ...JobProgressDetail }\n  }\n": typeof types.JobProgressDocument,
    "\n  query Job($id: ID!) {\n    job(id: $id) { ...JobDetail }\n  }\n": typeof types.JobDocument,
    "\n  subscription JobUpdated($id: ID!) {\n    jobUpdated(id: $id) { ...JobDetail }\n  }\n": typeof types.JobUpdatedDocument,
    "\n  query JobGraph($id: ID!) {\n    job(id: $id) {\n      id\n      dependencyGraph {\n        nodes { id jobType status queue }\n        edges { dependency dependent }\n        truncated\n      }\n    }\n  }\n": typeof types.JobGraphDocument,
    "\n  mutation RetryJob($id: ID!) { retry(id: $id) { id status } }\n": typeof types.RetryJobDocument,
    "\n  mutation CancelJob($id: ID!) { cancel(id: $id) { id status cancelRequested } }\n": typeof types.CancelJobDocument,
    "\n  mutation SubmitJob($input: SubmitJobInput!) { submit(input: $input) { id status queue duplicate } }\n": typeof types.SubmitJobDocument,
    "\n  subscription JobEvents($filter: EventFilterInput) {\n    jobEvents(filter: $filter) {\n      id\n      type\n      time\n      jobId\n      queue\n      jobType\n      errorType\n      data\n    }\n  }\n": typeof types.JobEventsDocument,
    "\n  subscription JobEventBatches($filter: EventFilterInput) {\n    jobEventBatches(filter: $filter) {\n      events {\n        id\n        type\n        time\n        jobId\n        queue\n        jobType\n        errorType\n        data\n      }\n    }\n  }\n": typeof types.JobEventBatchesDocument,
    "\n  subscription JobStatusEvents($filter: EventFilterInput) {\n    jobEventBatches(filter: $filter, windowMs: 20) {\n      events {\n        type\n        jobId\n        data\n      }\n    }\n  }\n": typeof types.JobStatusEventsDocument,
    "\n  subscription JobEventPulse($filter: EventFilterInput) {\n    jobEventBatches(filter: $filter, windowMs: 250) {\n      count\n    }\n  }\n": typeof types.JobEventPulseDocument,
    "\n  query QueueMetrics {\n    queueMetrics {\n      name\n      ready\n      delayed\n      leased\n      paused\n      maxInFlight\n      rateLimit { limit windowMs }\n      oldestPendingAgeMs\n      throughputPerMin\n      failedPerMin\n      failureRate\n      avgDurationMs\n      health\n    }\n    workers { id queues status }\n  }\n": typeof types.QueueMetricsDocument,
    "\n  query QueueCounts {\n    queues {\n      name\n      counts { waiting pending scheduled processing completed failed deadLetter cancelled }\n      controls { name paused maxInFlight rateLimit { limit windowMs } }\n    }\n  }\n": typeof types.QueueCountsDocument,
    "\n  query QueueToday($queue: String!, $from: DateTime!) {\n    throughputSeries(queue: $queue, from: $from) { minuteMs completed failed }\n  }\n": typeof types.QueueTodayDocument,
    "\n  mutation PauseQueue($queue: String!) { pauseQueue(queue: $queue) { name paused } }\n": typeof types.PauseQueueDocument,
    "\n  mutation ResumeQueue($queue: String!) { resumeQueue(queue: $queue) { name paused } }\n": typeof types.ResumeQueueDocument,
    "\n  mutation SetRateLimit($queue: String!, $limit: Int, $windowMs: Int!) {\n    setRateLimit(queue: $queue, limit: $limit, windowMs: $windowMs) { name rateLimit { limit windowMs } }\n  }\n": typeof types.SetRateLimitDocument,
    "\n  mutation SetConcurrency($queue: String!, $maxInFlight: Int) {\n    setConcurrency(queue: $queue, maxInFlight: $maxInFlight) { name maxInFlight }\n  }\n": typeof types.SetConcurrencyDocument,
    "\n  query UnservedJobTypes {\n    jobTypes { jobType queue served unservedJobs unservedQueues }\n  }\n": typeof types.UnservedJobTypesDocument,
    "\n  query Schedules {\n    scheduledJobs {\n      id name queue jobType payload schedule timezone enabled overlapPolicy catchUp priority\n      maxAttempts timeoutMs nextRunAt lastRunAt lastJobId nextRuns\n    }\n  }\n": typeof types.SchedulesDocument,
    "\n  mutation CreateSchedule($input: ScheduleInput!) { createSchedule(input: $input) { id name nextRuns } }\n": typeof types.CreateScheduleDocument,
    "\n  mutation UpdateSchedule($id: ID!, $input: ScheduleInput!) { updateSchedule(id: $id, input: $input) { id name enabled nextRuns } }\n": typeof types.UpdateScheduleDocument,
    "\n  mutation DeleteSchedule($id: ID!) { deleteSchedule(id: $id) }\n": typeof types.DeleteScheduleDocument,
    "\n  query Timeline($from: DateTime, $to: DateTime, $queue: String, $after: String) {\n    jobTimeline(from: $from, to: $to, queue: $queue, first: 1000, after: $after) {\n      items { id queue jobType status createdMs startMs endMs durationMs attempts workerId }\n      nextCursor\n    }\n  }\n": typeof types.TimelineDocument,
    "\n  query TimelineDensity($from: DateTime, $to: DateTime, $queue: String, $lanes: String!, $buckets: Int!) {\n    jobTimelineDensity(from: $from, to: $to, queue: $queue, lanes: $lanes, buckets: $buckets) {\n      fromMs toMs bucketMs\n      cells { lane bucket jobs failed }\n    }\n  }\n": typeof types.TimelineDensityDocument,
    "\n  query Workers {\n    workers { id group state quiet command inFlight version queues concurrency host pid status running currentJobs startedAt lastSeenAt uptimeMs processed failed cpuPercent rssBytes }\n    workerGroups { name desired actual draining busy capacity utilization autoscale scaledAt scaledReason crashesLastHour }\n  }\n": typeof types.WorkersDocument,
    "\n  subscription WorkerEvents { workerEvents { id type } }\n": typeof types.WorkerEventsDocument,
    "\n  query WorkerGroupHistory {\n    workerGroups { name history(minutes: 120) { minute desired actual busy capacity crashes utilization } crashes(limit: 10) { workerId at exitCode detail } }\n  }\n": typeof types.WorkerGroupHistoryDocument,
    "\n  query WorkerLogs($id: String!, $lines: Int!) { workerLogs(id: $id, lines: $lines) }\n": typeof types.WorkerLogsDocument,
    "\n  mutation ScaleWorkerGroup($name: String!, $desired: Int, $step: Int) {\n    scaleWorkerGroup(name: $name, desired: $desired, step: $step) { name desired }\n  }\n": typeof types.ScaleWorkerGroupDocument,
    "\n  mutation SetWorkerGroupAutoscale($name: String!, $autoscale: AutoscaleInput) {\n    setWorkerGroupAutoscale(name: $name, autoscale: $autoscale) { name desired autoscale }\n  }\n": typeof types.SetWorkerGroupAutoscaleDocument,
    "\n  mutation RestartWorker($id: String!) { restartWorker(id: $id) { id command } }\n": typeof types.RestartWorkerDocument,
    "\n  mutation QuietWorker($id: String!) { quietWorker(id: $id) { id command } }\n": typeof types.QuietWorkerDocument,
    "\n  mutation ResumeWorker($id: String!) { resumeWorker(id: $id) { id command } }\n": typeof types.ResumeWorkerDocument,
    "\n  mutation StopWorker($id: String!) { stopWorker(id: $id) { id command } }\n": typeof types.StopWorkerDocument,
};
const documents: Documents = {
    "\n  query AlertRules {\n    alertRules {\n      id name builtin description severity enabled state stateSince lastValue lastEvaluatedAt\n      forS renotifyS channelIds alertId\n      condition { metric op threshold windowS targetMs minSamples }\n      scope { queue jobType }\n    }\n    alertChannels { id name kind enabled }\n  }\n": types.AlertRulesDocument,
    "\n  query AlertChannels { alertChannels { id name kind config enabled } }\n": types.AlertChannelsDocument,
    "\n  query AlertHistory($status: String, $ruleId: ID, $queue: String, $after: String) {\n    alerts(status: $status, ruleId: $ruleId, queue: $queue, first: 50, after: $after) {\n      firing nextCursor\n      alerts {\n        id ruleId ruleName severity status value peakValue summary startedAt firedAt resolvedAt\n        silenced acknowledgedAt acknowledgedBy\n        scope { queue jobType }\n        deliveries { id channelName kind recipient event status attempts error }\n      }\n    }\n  }\n": types.AlertHistoryDocument,
    "\n  query FiringAlerts { alerts(status: \"firing\", first: 5) { firing alerts { id ruleName severity } } }\n": types.FiringAlertsDocument,
    "\n  mutation CreateAlertRule($input: AlertRuleInput!) { createAlertRule(input: $input) { id } }\n": types.CreateAlertRuleDocument,
    "\n  mutation UpdateAlertRule($id: ID!, $input: AlertRuleInput!) { updateAlertRule(id: $id, input: $input) { id enabled } }\n": types.UpdateAlertRuleDocument,
    "\n  mutation DeleteAlertRule($id: ID!) { deleteAlertRule(id: $id) }\n": types.DeleteAlertRuleDocument,
    "\n  mutation CreateAlertChannel($input: AlertChannelInput!) { createAlertChannel(input: $input) { id } }\n": types.CreateAlertChannelDocument,
    "\n  mutation UpdateAlertChannel($id: ID!, $input: AlertChannelInput!) { updateAlertChannel(id: $id, input: $input) { id } }\n": types.UpdateAlertChannelDocument,
    "\n  mutation DeleteAlertChannel($id: ID!) { deleteAlertChannel(id: $id) }\n": types.DeleteAlertChannelDocument,
    "\n  mutation TestAlertChannel($id: ID!) { testAlertChannel(id: $id) { id status } }\n": types.TestAlertChannelDocument,
    "\n  query AlertDelivery($id: ID!) { alertDelivery(id: $id) { id status attempts error } }\n": types.AlertDeliveryDocument,
    "\n  mutation AcknowledgeAlert($id: ID!) { acknowledgeAlert(id: $id) { id acknowledgedAt } }\n": types.AcknowledgeAlertDocument,
    "\n  mutation CreateAlertSilence($input: AlertSilenceInput!) { createAlertSilence(input: $input) { id endsAt } }\n": types.CreateAlertSilenceDocument,
    "\n  query Viewer {\n    viewer {\n      role\n      name\n    }\n  }\n": types.ViewerDocument,
    "\n  query Batches {\n    recentBatches(first: 50) { id name total completed failed pending processing status createdAt completedAt onCompleteJobId }\n  }\n": types.BatchesDocument,
    "\n  query Charts($from: DateTime!, $weekFrom: DateTime!) {\n    queueMetrics { name }\n    week: throughputSeries(from: $weekFrom) { minuteMs submitted }\n    durationHistogram(from: $weekFrom) { total p50Ms p95Ms p99Ms buckets { lowerMs upperMs count } }\n    recent: throughputSeries(from: $from) { minuteMs completed failed }\n  }\n": types.ChartsDocument,
    "\n  query QueueSeries($queue: String!, $from: DateTime!) {\n    throughputSeries(queue: $queue, from: $from) { minuteMs completed failed }\n  }\n": types.QueueSeriesDocument,
    "\n  query DeadLetters($filter: DlqFilterInput, $first: Int!, $after: String) {\n    deadLetters(filter: $filter, first: $first, after: $after) {\n      jobs { id queue jobType errorType error attempts completedAt }\n      nextCursor\n    }\n    deadLetterCount(filter: $filter)\n  }\n": types.DeadLettersDocument,
    "\n  query DeadLetterCount($filter: DlqFilterInput) { deadLetterCount(filter: $filter) }\n": types.DeadLetterCountDocument,
    "\n  mutation RetryDeadLetters($filter: DlqFilterInput!) { retryDeadLetters(filter: $filter) { count } }\n": types.RetryDeadLettersDocument,
    "\n  mutation DeleteDeadLetters($filter: DlqFilterInput!) { deleteDeadLetters(filter: $filter) { count } }\n": types.DeleteDeadLettersDocument,
    "\n  query DlqInsights($queue: String, $jobType: String) {\n    dlqInsights(queue: $queue, jobType: $jobType) {\n      analyzed\n      complete\n      groups { groupId template count jobTypes queues errorTypes retryable evidence suggestion lastSeen }\n    }\n  }\n": types.DlqInsightsDocument,
    "\n  mutation RetryDlqGroup($groupId: String!, $queue: String, $jobType: String) {\n    retryDlqGroup(groupId: $groupId, queue: $queue, jobType: $jobType) { count }\n  }\n": types.RetryDlqGroupDocument,
    "\n  query Jobs($filter: JobFilter, $first: Int!, $after: String) {\n    jobs(filter: $filter, first: $first, after: $after) {\n      edges {\n        cursor\n        node { id queue jobType status attempts maxAttempts createdAt completedAt errorType error }\n      }\n      pageInfo { hasNextPage endCursor }\n    }\n  }\n": types.JobsDocument,
    "\n  fragment JobProgressDetail on JobProgress {\n    jobId attempt fraction message logsDropped updatedAt\n    logs { time message }\n  }\n": types.JobProgressDetailFragmentDoc,
    "\n  fragment JobDetail on Job {\n    id queue jobType status priority attempts maxAttempts payload result error errorType\n    createdAt startedAt completedAt scheduledFor timeoutMs idempotencyKey workerId batchId\n    resultExpired resultExpiresAt\n    attemptHistory {\n      attempt workerId startedAt finishedAt outcome errorType error durationMs\n      retryDecision { retry delayMs successProbability reason }\n    }\n    dependsOn { id }\n    progress { ...JobProgressDetail }\n  }\n": types.JobDetailFragmentDoc,
    "\n  subscription JobProgress($jobId: ID!) {\n    jobProgress(jobId: $jobId) { ...JobProgressDetail }\n  }\n": types.JobProgressDocument,
    "\n  query Job($id: ID!) {\n    job(id: $id) { ...JobDetail }\n  }\n": types.JobDocument,
    "\n  subscription JobUpdated($id: ID!) {\n    jobUpdated(id: $id) { ...JobDetail }\n  }\n": types.JobUpdatedDocument,
    "\n  query JobGraph($id: ID!) {\n    job(id: $id) {\n      id\n      dependencyGraph {\n        nodes { id jobType status queue }\n        edges { dependency dependent }\n        truncated\n      }\n    }\n  }\n": types.JobGraphDocument,
    "\n  mutation RetryJob($id: ID!) { retry(id: $id) { id status } }\n": types.RetryJobDocument,
    "\n  mutation CancelJob($id: ID!) { cancel(id: $id) { id status cancelRequested } }\n": types.CancelJobDocument,
    "\n  mutation SubmitJob($input: SubmitJobInput!) { submit(input: $input) { id status queue duplicate } }\n": types.SubmitJobDocument,
    "\n  subscription JobEvents($filter: EventFilterInput) {\n    jobEvents(filter: $filter) {\n      id\n      type\n      time\n      jobId\n      queue\n      jobType\n      errorType\n      data\n    }\n  }\n": types.JobEventsDocument,
    "\n  subscription JobEventBatches($filter: EventFilterInput) {\n    jobEventBatches(filter: $filter) {\n      events {\n        id\n        type\n        time\n        jobId\n        queue\n        jobType\n        errorType\n        data\n      }\n    }\n  }\n": types.JobEventBatchesDocument,
    "\n  subscription JobStatusEvents($filter: EventFilterInput) {\n    jobEventBatches(filter: $filter, windowMs: 20) {\n      events {\n        type\n        jobId\n        data\n      }\n    }\n  }\n": types.JobStatusEventsDocument,
    "\n  subscription JobEventPulse($filter: EventFilterInput) {\n    jobEventBatches(filter: $filter, windowMs: 250) {\n      count\n    }\n  }\n": types.JobEventPulseDocument,
    "\n  query QueueMetrics {\n    queueMetrics {\n      name\n      ready\n      delayed\n      leased\n      paused\n      maxInFlight\n      rateLimit { limit windowMs }\n      oldestPendingAgeMs\n      throughputPerMin\n      failedPerMin\n      failureRate\n      avgDurationMs\n      health\n    }\n    workers { id queues status }\n  }\n": types.QueueMetricsDocument,
    "\n  query QueueCounts {\n    queues {\n      name\n      counts { waiting pending scheduled processing completed failed deadLetter cancelled }\n      controls { name paused maxInFlight rateLimit { limit windowMs } }\n    }\n  }\n": types.QueueCountsDocument,
    "\n  query QueueToday($queue: String!, $from: DateTime!) {\n    throughputSeries(queue: $queue, from: $from) { minuteMs completed failed }\n  }\n": types.QueueTodayDocument,
    "\n  mutation PauseQueue($queue: String!) { pauseQueue(queue: $queue) { name paused } }\n": types.PauseQueueDocument,
    "\n  mutation ResumeQueue($queue: String!) { resumeQueue(queue: $queue) { name paused } }\n": types.ResumeQueueDocument,
    "\n  mutation SetRateLimit($queue: String!, $limit: Int, $windowMs: Int!) {\n    setRateLimit(queue: $queue, limit: $limit, windowMs: $windowMs) { name rateLimit { limit windowMs } }\n  }\n": types.SetRateLimitDocument,
    "\n  mutation SetConcurrency($queue: String!, $maxInFlight: Int) {\n    setConcurrency(queue: $queue, maxInFlight: $maxInFlight) { name maxInFlight }\n  }\n": types.SetConcurrencyDocument,
    "\n  query UnservedJobTypes {\n    jobTypes { jobType queue served unservedJobs unservedQueues }\n  }\n": types.UnservedJobTypesDocument,
    "\n  query Schedules {\n    scheduledJobs {\n      id name queue jobType payload schedule timezone enabled overlapPolicy catchUp priority\n      maxAttempts timeoutMs nextRunAt lastRunAt lastJobId nextRuns\n    }\n  }\n": types.SchedulesDocument,
    "\n  mutation CreateSchedule($input: ScheduleInput!) { createSchedule(input: $input) { id name nextRuns } }\n": types.CreateScheduleDocument,
    "\n  mutation UpdateSchedule($id: ID!, $input: ScheduleInput!) { updateSchedule(id: $id, input: $input) { id name enabled nextRuns } }\n": types.UpdateScheduleDocument,
    "\n  mutation DeleteSchedule($id: ID!) { deleteSchedule(id: $id) }\n": types.DeleteScheduleDocument,
    "\n  query Timeline($from: DateTime, $to: DateTime, $queue: String, $after: String) {\n    jobTimeline(from: $from, to: $to, queue: $queue, first: 1000, after: $after) {\n      items { id queue jobType status createdMs startMs endMs durationMs attempts workerId }\n      nextCursor\n    }\n  }\n": types.TimelineDocument,
    "\n  query TimelineDensity($from: DateTime, $to: DateTime, $queue: String, $lanes: String!, $buckets: Int!) {\n    jobTimelineDensity(from: $from, to: $to, queue: $queue, lanes: $lanes, buckets: $buckets) {\n      fromMs toMs bucketMs\n      cells { lane bucket jobs failed }\n    }\n  }\n": types.TimelineDensityDocument,
    "\n  query Workers {\n    workers { id group state quiet command inFlight version queues concurrency host pid status running currentJobs startedAt lastSeenAt uptimeMs processed failed cpuPercent rssBytes }\n    workerGroups { name desired actual draining busy capacity utilization autoscale scaledAt scaledReason crashesLastHour }\n  }\n": types.WorkersDocument,
    "\n  subscription WorkerEvents { workerEvents { id type } }\n": types.WorkerEventsDocument,
    "\n  query WorkerGroupHistory {\n    workerGroups { name history(minutes: 120) { minute desired actual busy capacity crashes utilization } crashes(limit: 10) { workerId at exitCode detail } }\n  }\n": types.WorkerGroupHistoryDocument,
    "\n  query WorkerLogs($id: String!, $lines: Int!) { workerLogs(id: $id, lines: $lines) }\n": types.WorkerLogsDocument,
    "\n  mutation ScaleWorkerGroup($name: String!, $desired: Int, $step: Int) {\n    scaleWorkerGroup(name: $name, desired: $desired, step: $step) { name desired }\n  }\n": types.ScaleWorkerGroupDocument,
    "\n  mutation SetWorkerGroupAutoscale($name: String!, $autoscale: AutoscaleInput) {\n    setWorkerGroupAutoscale(name: $name, autoscale: $autoscale) { name desired autoscale }\n  }\n": types.SetWorkerGroupAutoscaleDocument,
    "\n  mutation RestartWorker($id: String!) { restartWorker(id: $id) { id command } }\n": types.RestartWorkerDocument,
    "\n  mutation QuietWorker($id: String!) { quietWorker(id: $id) { id command } }\n": types.QuietWorkerDocument,
    "\n  mutation ResumeWorker($id: String!) { resumeWorker(id: $id) { id command } }\n": types.ResumeWorkerDocument,
    "\n  mutation StopWorker($id: String!) { stopWorker(id: $id) { id command } }\n": types.StopWorkerDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query AlertRules {\n    alertRules {\n      id name builtin description severity enabled state stateSince lastValue lastEvaluatedAt\n      forS renotifyS channelIds alertId\n      condition { metric op threshold windowS targetMs minSamples }\n      scope { queue jobType }\n    }\n    alertChannels { id name kind enabled }\n  }\n"): (typeof documents)["\n  query AlertRules {\n    alertRules {\n      id name builtin description severity enabled state stateSince lastValue lastEvaluatedAt\n      forS renotifyS channelIds alertId\n      condition { metric op threshold windowS targetMs minSamples }\n      scope { queue jobType }\n    }\n    alertChannels { id name kind enabled }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query AlertChannels { alertChannels { id name kind config enabled } }\n"): (typeof documents)["\n  query AlertChannels { alertChannels { id name kind config enabled } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query AlertHistory($status: String, $ruleId: ID, $queue: String, $after: String) {\n    alerts(status: $status, ruleId: $ruleId, queue: $queue, first: 50, after: $after) {\n      firing nextCursor\n      alerts {\n        id ruleId ruleName severity status value peakValue summary startedAt firedAt resolvedAt\n        silenced acknowledgedAt acknowledgedBy\n        scope { queue jobType }\n        deliveries { id channelName kind recipient event status attempts error }\n      }\n    }\n  }\n"): (typeof documents)["\n  query AlertHistory($status: String, $ruleId: ID, $queue: String, $after: String) {\n    alerts(status: $status, ruleId: $ruleId, queue: $queue, first: 50, after: $after) {\n      firing nextCursor\n      alerts {\n        id ruleId ruleName severity status value peakValue summary startedAt firedAt resolvedAt\n        silenced acknowledgedAt acknowledgedBy\n        scope { queue jobType }\n        deliveries { id channelName kind recipient event status attempts error }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query FiringAlerts { alerts(status: \"firing\", first: 5) { firing alerts { id ruleName severity } } }\n"): (typeof documents)["\n  query FiringAlerts { alerts(status: \"firing\", first: 5) { firing alerts { id ruleName severity } } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateAlertRule($input: AlertRuleInput!) { createAlertRule(input: $input) { id } }\n"): (typeof documents)["\n  mutation CreateAlertRule($input: AlertRuleInput!) { createAlertRule(input: $input) { id } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation UpdateAlertRule($id: ID!, $input: AlertRuleInput!) { updateAlertRule(id: $id, input: $input) { id enabled } }\n"): (typeof documents)["\n  mutation UpdateAlertRule($id: ID!, $input: AlertRuleInput!) { updateAlertRule(id: $id, input: $input) { id enabled } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DeleteAlertRule($id: ID!) { deleteAlertRule(id: $id) }\n"): (typeof documents)["\n  mutation DeleteAlertRule($id: ID!) { deleteAlertRule(id: $id) }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateAlertChannel($input: AlertChannelInput!) { createAlertChannel(input: $input) { id } }\n"): (typeof documents)["\n  mutation CreateAlertChannel($input: AlertChannelInput!) { createAlertChannel(input: $input) { id } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation UpdateAlertChannel($id: ID!, $input: AlertChannelInput!) { updateAlertChannel(id: $id, input: $input) { id } }\n"): (typeof documents)["\n  mutation UpdateAlertChannel($id: ID!, $input: AlertChannelInput!) { updateAlertChannel(id: $id, input: $input) { id } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DeleteAlertChannel($id: ID!) { deleteAlertChannel(id: $id) }\n"): (typeof documents)["\n  mutation DeleteAlertChannel($id: ID!) { deleteAlertChannel(id: $id) }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation TestAlertChannel($id: ID!) { testAlertChannel(id: $id) { id status } }\n"): (typeof documents)["\n  mutation TestAlertChannel($id: ID!) { testAlertChannel(id: $id) { id status } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query AlertDelivery($id: ID!) { alertDelivery(id: $id) { id status attempts error } }\n"): (typeof documents)["\n  query AlertDelivery($id: ID!) { alertDelivery(id: $id) { id status attempts error } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation AcknowledgeAlert($id: ID!) { acknowledgeAlert(id: $id) { id acknowledgedAt } }\n"): (typeof documents)["\n  mutation AcknowledgeAlert($id: ID!) { acknowledgeAlert(id: $id) { id acknowledgedAt } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateAlertSilence($input: AlertSilenceInput!) { createAlertSilence(input: $input) { id endsAt } }\n"): (typeof documents)["\n  mutation CreateAlertSilence($input: AlertSilenceInput!) { createAlertSilence(input: $input) { id endsAt } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Viewer {\n    viewer {\n      role\n      name\n    }\n  }\n"): (typeof documents)["\n  query Viewer {\n    viewer {\n      role\n      name\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Batches {\n    recentBatches(first: 50) { id name total completed failed pending processing status createdAt completedAt onCompleteJobId }\n  }\n"): (typeof documents)["\n  query Batches {\n    recentBatches(first: 50) { id name total completed failed pending processing status createdAt completedAt onCompleteJobId }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Charts($from: DateTime!, $weekFrom: DateTime!) {\n    queueMetrics { name }\n    week: throughputSeries(from: $weekFrom) { minuteMs submitted }\n    durationHistogram(from: $weekFrom) { total p50Ms p95Ms p99Ms buckets { lowerMs upperMs count } }\n    recent: throughputSeries(from: $from) { minuteMs completed failed }\n  }\n"): (typeof documents)["\n  query Charts($from: DateTime!, $weekFrom: DateTime!) {\n    queueMetrics { name }\n    week: throughputSeries(from: $weekFrom) { minuteMs submitted }\n    durationHistogram(from: $weekFrom) { total p50Ms p95Ms p99Ms buckets { lowerMs upperMs count } }\n    recent: throughputSeries(from: $from) { minuteMs completed failed }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query QueueSeries($queue: String!, $from: DateTime!) {\n    throughputSeries(queue: $queue, from: $from) { minuteMs completed failed }\n  }\n"): (typeof documents)["\n  query QueueSeries($queue: String!, $from: DateTime!) {\n    throughputSeries(queue: $queue, from: $from) { minuteMs completed failed }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query DeadLetters($filter: DlqFilterInput, $first: Int!, $after: String) {\n    deadLetters(filter: $filter, first: $first, after: $after) {\n      jobs { id queue jobType errorType error attempts completedAt }\n      nextCursor\n    }\n    deadLetterCount(filter: $filter)\n  }\n"): (typeof documents)["\n  query DeadLetters($filter: DlqFilterInput, $first: Int!, $after: String) {\n    deadLetters(filter: $filter, first: $first, after: $after) {\n      jobs { id queue jobType errorType error attempts completedAt }\n      nextCursor\n    }\n    deadLetterCount(filter: $filter)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query DeadLetterCount($filter: DlqFilterInput) { deadLetterCount(filter: $filter) }\n"): (typeof documents)["\n  query DeadLetterCount($filter: DlqFilterInput) { deadLetterCount(filter: $filter) }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RetryDeadLetters($filter: DlqFilterInput!) { retryDeadLetters(filter: $filter) { count } }\n"): (typeof documents)["\n  mutation RetryDeadLetters($filter: DlqFilterInput!) { retryDeadLetters(filter: $filter) { count } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DeleteDeadLetters($filter: DlqFilterInput!) { deleteDeadLetters(filter: $filter) { count } }\n"): (typeof documents)["\n  mutation DeleteDeadLetters($filter: DlqFilterInput!) { deleteDeadLetters(filter: $filter) { count } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query DlqInsights($queue: String, $jobType: String) {\n    dlqInsights(queue: $queue, jobType: $jobType) {\n      analyzed\n      complete\n      groups { groupId template count jobTypes queues errorTypes retryable evidence suggestion lastSeen }\n    }\n  }\n"): (typeof documents)["\n  query DlqInsights($queue: String, $jobType: String) {\n    dlqInsights(queue: $queue, jobType: $jobType) {\n      analyzed\n      complete\n      groups { groupId template count jobTypes queues errorTypes retryable evidence suggestion lastSeen }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RetryDlqGroup($groupId: String!, $queue: String, $jobType: String) {\n    retryDlqGroup(groupId: $groupId, queue: $queue, jobType: $jobType) { count }\n  }\n"): (typeof documents)["\n  mutation RetryDlqGroup($groupId: String!, $queue: String, $jobType: String) {\n    retryDlqGroup(groupId: $groupId, queue: $queue, jobType: $jobType) { count }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Jobs($filter: JobFilter, $first: Int!, $after: String) {\n    jobs(filter: $filter, first: $first, after: $after) {\n      edges {\n        cursor\n        node { id queue jobType status attempts maxAttempts createdAt completedAt errorType error }\n      }\n      pageInfo { hasNextPage endCursor }\n    }\n  }\n"): (typeof documents)["\n  query Jobs($filter: JobFilter, $first: Int!, $after: String) {\n    jobs(filter: $filter, first: $first, after: $after) {\n      edges {\n        cursor\n        node { id queue jobType status attempts maxAttempts createdAt completedAt errorType error }\n      }\n      pageInfo { hasNextPage endCursor }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment JobProgressDetail on JobProgress {\n    jobId attempt fraction message logsDropped updatedAt\n    logs { time message }\n  }\n"): (typeof documents)["\n  fragment JobProgressDetail on JobProgress {\n    jobId attempt fraction message logsDropped updatedAt\n    logs { time message }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment JobDetail on Job {\n    id queue jobType status priority attempts maxAttempts payload result error errorType\n    createdAt startedAt completedAt scheduledFor timeoutMs idempotencyKey workerId batchId\n    resultExpired resultExpiresAt\n    attemptHistory {\n      attempt workerId startedAt finishedAt outcome errorType error durationMs\n      retryDecision { retry delayMs successProbability reason }\n    }\n    dependsOn { id }\n    progress { ...JobProgressDetail }\n  }\n"): (typeof documents)["\n  fragment JobDetail on Job {\n    id queue jobType status priority attempts maxAttempts payload result error errorType\n    createdAt startedAt completedAt scheduledFor timeoutMs idempotencyKey workerId batchId\n    resultExpired resultExpiresAt\n    attemptHistory {\n      attempt workerId startedAt finishedAt outcome errorType error durationMs\n      retryDecision { retry delayMs successProbability reason }\n    }\n    dependsOn { id }\n    progress { ...JobProgressDetail }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription JobProgress($jobId: ID!) {\n    jobProgress(jobId: $jobId) { ...JobProgressDetail }\n  }\n"): (typeof documents)["\n  subscription JobProgress($jobId: ID!) {\n    jobProgress(jobId: $jobId) { ...JobProgressDetail }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Job($id: ID!) {\n    job(id: $id) { ...JobDetail }\n  }\n"): (typeof documents)["\n  query Job($id: ID!) {\n    job(id: $id) { ...JobDetail }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription JobUpdated($id: ID!) {\n    jobUpdated(id: $id) { ...JobDetail }\n  }\n"): (typeof documents)["\n  subscription JobUpdated($id: ID!) {\n    jobUpdated(id: $id) { ...JobDetail }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query JobGraph($id: ID!) {\n    job(id: $id) {\n      id\n      dependencyGraph {\n        nodes { id jobType status queue }\n        edges { dependency dependent }\n        truncated\n      }\n    }\n  }\n"): (typeof documents)["\n  query JobGraph($id: ID!) {\n    job(id: $id) {\n      id\n      dependencyGraph {\n        nodes { id jobType status queue }\n        edges { dependency dependent }\n        truncated\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RetryJob($id: ID!) { retry(id: $id) { id status } }\n"): (typeof documents)["\n  mutation RetryJob($id: ID!) { retry(id: $id) { id status } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CancelJob($id: ID!) { cancel(id: $id) { id status cancelRequested } }\n"): (typeof documents)["\n  mutation CancelJob($id: ID!) { cancel(id: $id) { id status cancelRequested } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SubmitJob($input: SubmitJobInput!) { submit(input: $input) { id status queue duplicate } }\n"): (typeof documents)["\n  mutation SubmitJob($input: SubmitJobInput!) { submit(input: $input) { id status queue duplicate } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription JobEvents($filter: EventFilterInput) {\n    jobEvents(filter: $filter) {\n      id\n      type\n      time\n      jobId\n      queue\n      jobType\n      errorType\n      data\n    }\n  }\n"): (typeof documents)["\n  subscription JobEvents($filter: EventFilterInput) {\n    jobEvents(filter: $filter) {\n      id\n      type\n      time\n      jobId\n      queue\n      jobType\n      errorType\n      data\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription JobEventBatches($filter: EventFilterInput) {\n    jobEventBatches(filter: $filter) {\n      events {\n        id\n        type\n        time\n        jobId\n        queue\n        jobType\n        errorType\n        data\n      }\n    }\n  }\n"): (typeof documents)["\n  subscription JobEventBatches($filter: EventFilterInput) {\n    jobEventBatches(filter: $filter) {\n      events {\n        id\n        type\n        time\n        jobId\n        queue\n        jobType\n        errorType\n        data\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription JobStatusEvents($filter: EventFilterInput) {\n    jobEventBatches(filter: $filter, windowMs: 20) {\n      events {\n        type\n        jobId\n        data\n      }\n    }\n  }\n"): (typeof documents)["\n  subscription JobStatusEvents($filter: EventFilterInput) {\n    jobEventBatches(filter: $filter, windowMs: 20) {\n      events {\n        type\n        jobId\n        data\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription JobEventPulse($filter: EventFilterInput) {\n    jobEventBatches(filter: $filter, windowMs: 250) {\n      count\n    }\n  }\n"): (typeof documents)["\n  subscription JobEventPulse($filter: EventFilterInput) {\n    jobEventBatches(filter: $filter, windowMs: 250) {\n      count\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query QueueMetrics {\n    queueMetrics {\n      name\n      ready\n      delayed\n      leased\n      paused\n      maxInFlight\n      rateLimit { limit windowMs }\n      oldestPendingAgeMs\n      throughputPerMin\n      failedPerMin\n      failureRate\n      avgDurationMs\n      health\n    }\n    workers { id queues status }\n  }\n"): (typeof documents)["\n  query QueueMetrics {\n    queueMetrics {\n      name\n      ready\n      delayed\n      leased\n      paused\n      maxInFlight\n      rateLimit { limit windowMs }\n      oldestPendingAgeMs\n      throughputPerMin\n      failedPerMin\n      failureRate\n      avgDurationMs\n      health\n    }\n    workers { id queues status }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query QueueCounts {\n    queues {\n      name\n      counts { waiting pending scheduled processing completed failed deadLetter cancelled }\n      controls { name paused maxInFlight rateLimit { limit windowMs } }\n    }\n  }\n"): (typeof documents)["\n  query QueueCounts {\n    queues {\n      name\n      counts { waiting pending scheduled processing completed failed deadLetter cancelled }\n      controls { name paused maxInFlight rateLimit { limit windowMs } }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query QueueToday($queue: String!, $from: DateTime!) {\n    throughputSeries(queue: $queue, from: $from) { minuteMs completed failed }\n  }\n"): (typeof documents)["\n  query QueueToday($queue: String!, $from: DateTime!) {\n    throughputSeries(queue: $queue, from: $from) { minuteMs completed failed }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation PauseQueue($queue: String!) { pauseQueue(queue: $queue) { name paused } }\n"): (typeof documents)["\n  mutation PauseQueue($queue: String!) { pauseQueue(queue: $queue) { name paused } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation ResumeQueue($queue: String!) { resumeQueue(queue: $queue) { name paused } }\n"): (typeof documents)["\n  mutation ResumeQueue($queue: String!) { resumeQueue(queue: $queue) { name paused } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SetRateLimit($queue: String!, $limit: Int, $windowMs: Int!) {\n    setRateLimit(queue: $queue, limit: $limit, windowMs: $windowMs) { name rateLimit { limit windowMs } }\n  }\n"): (typeof documents)["\n  mutation SetRateLimit($queue: String!, $limit: Int, $windowMs: Int!) {\n    setRateLimit(queue: $queue, limit: $limit, windowMs: $windowMs) { name rateLimit { limit windowMs } }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SetConcurrency($queue: String!, $maxInFlight: Int) {\n    setConcurrency(queue: $queue, maxInFlight: $maxInFlight) { name maxInFlight }\n  }\n"): (typeof documents)["\n  mutation SetConcurrency($queue: String!, $maxInFlight: Int) {\n    setConcurrency(queue: $queue, maxInFlight: $maxInFlight) { name maxInFlight }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query UnservedJobTypes {\n    jobTypes { jobType queue served unservedJobs unservedQueues }\n  }\n"): (typeof documents)["\n  query UnservedJobTypes {\n    jobTypes { jobType queue served unservedJobs unservedQueues }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Schedules {\n    scheduledJobs {\n      id name queue jobType payload schedule timezone enabled overlapPolicy catchUp priority\n      maxAttempts timeoutMs nextRunAt lastRunAt lastJobId nextRuns\n    }\n  }\n"): (typeof documents)["\n  query Schedules {\n    scheduledJobs {\n      id name queue jobType payload schedule timezone enabled overlapPolicy catchUp priority\n      maxAttempts timeoutMs nextRunAt lastRunAt lastJobId nextRuns\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateSchedule($input: ScheduleInput!) { createSchedule(input: $input) { id name nextRuns } }\n"): (typeof documents)["\n  mutation CreateSchedule($input: ScheduleInput!) { createSchedule(input: $input) { id name nextRuns } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation UpdateSchedule($id: ID!, $input: ScheduleInput!) { updateSchedule(id: $id, input: $input) { id name enabled nextRuns } }\n"): (typeof documents)["\n  mutation UpdateSchedule($id: ID!, $input: ScheduleInput!) { updateSchedule(id: $id, input: $input) { id name enabled nextRuns } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DeleteSchedule($id: ID!) { deleteSchedule(id: $id) }\n"): (typeof documents)["\n  mutation DeleteSchedule($id: ID!) { deleteSchedule(id: $id) }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Timeline($from: DateTime, $to: DateTime, $queue: String, $after: String) {\n    jobTimeline(from: $from, to: $to, queue: $queue, first: 1000, after: $after) {\n      items { id queue jobType status createdMs startMs endMs durationMs attempts workerId }\n      nextCursor\n    }\n  }\n"): (typeof documents)["\n  query Timeline($from: DateTime, $to: DateTime, $queue: String, $after: String) {\n    jobTimeline(from: $from, to: $to, queue: $queue, first: 1000, after: $after) {\n      items { id queue jobType status createdMs startMs endMs durationMs attempts workerId }\n      nextCursor\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query TimelineDensity($from: DateTime, $to: DateTime, $queue: String, $lanes: String!, $buckets: Int!) {\n    jobTimelineDensity(from: $from, to: $to, queue: $queue, lanes: $lanes, buckets: $buckets) {\n      fromMs toMs bucketMs\n      cells { lane bucket jobs failed }\n    }\n  }\n"): (typeof documents)["\n  query TimelineDensity($from: DateTime, $to: DateTime, $queue: String, $lanes: String!, $buckets: Int!) {\n    jobTimelineDensity(from: $from, to: $to, queue: $queue, lanes: $lanes, buckets: $buckets) {\n      fromMs toMs bucketMs\n      cells { lane bucket jobs failed }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Workers {\n    workers { id group state quiet command inFlight version queues concurrency host pid status running currentJobs startedAt lastSeenAt uptimeMs processed failed cpuPercent rssBytes }\n    workerGroups { name desired actual draining busy capacity utilization autoscale scaledAt scaledReason crashesLastHour }\n  }\n"): (typeof documents)["\n  query Workers {\n    workers { id group state quiet command inFlight version queues concurrency host pid status running currentJobs startedAt lastSeenAt uptimeMs processed failed cpuPercent rssBytes }\n    workerGroups { name desired actual draining busy capacity utilization autoscale scaledAt scaledReason crashesLastHour }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription WorkerEvents { workerEvents { id type } }\n"): (typeof documents)["\n  subscription WorkerEvents { workerEvents { id type } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query WorkerGroupHistory {\n    workerGroups { name history(minutes: 120) { minute desired actual busy capacity crashes utilization } crashes(limit: 10) { workerId at exitCode detail } }\n  }\n"): (typeof documents)["\n  query WorkerGroupHistory {\n    workerGroups { name history(minutes: 120) { minute desired actual busy capacity crashes utilization } crashes(limit: 10) { workerId at exitCode detail } }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query WorkerLogs($id: String!, $lines: Int!) { workerLogs(id: $id, lines: $lines) }\n"): (typeof documents)["\n  query WorkerLogs($id: String!, $lines: Int!) { workerLogs(id: $id, lines: $lines) }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation ScaleWorkerGroup($name: String!, $desired: Int, $step: Int) {\n    scaleWorkerGroup(name: $name, desired: $desired, step: $step) { name desired }\n  }\n"): (typeof documents)["\n  mutation ScaleWorkerGroup($name: String!, $desired: Int, $step: Int) {\n    scaleWorkerGroup(name: $name, desired: $desired, step: $step) { name desired }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SetWorkerGroupAutoscale($name: String!, $autoscale: AutoscaleInput) {\n    setWorkerGroupAutoscale(name: $name, autoscale: $autoscale) { name desired autoscale }\n  }\n"): (typeof documents)["\n  mutation SetWorkerGroupAutoscale($name: String!, $autoscale: AutoscaleInput) {\n    setWorkerGroupAutoscale(name: $name, autoscale: $autoscale) { name desired autoscale }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RestartWorker($id: String!) { restartWorker(id: $id) { id command } }\n"): (typeof documents)["\n  mutation RestartWorker($id: String!) { restartWorker(id: $id) { id command } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation QuietWorker($id: String!) { quietWorker(id: $id) { id command } }\n"): (typeof documents)["\n  mutation QuietWorker($id: String!) { quietWorker(id: $id) { id command } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation ResumeWorker($id: String!) { resumeWorker(id: $id) { id command } }\n"): (typeof documents)["\n  mutation ResumeWorker($id: String!) { resumeWorker(id: $id) { id command } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation StopWorker($id: String!) { stopWorker(id: $id) { id command } }\n"): (typeof documents)["\n  mutation StopWorker($id: String!) { stopWorker(id: $id) { id command } }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;