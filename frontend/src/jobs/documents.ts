import { graphql } from "../gql";

export const JobsQuery = graphql(`
  query Jobs($filter: JobFilter, $first: Int!, $after: String) {
    jobs(filter: $filter, first: $first, after: $after) {
      edges {
        cursor
        node { id queue jobType status attempts maxAttempts createdAt completedAt errorType error }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

export const JobProgressFields = graphql(`
  fragment JobProgressDetail on JobProgress {
    jobId attempt fraction message logsDropped updatedAt
    logs { time message }
  }
`);

export const JobDetailFields = graphql(`
  fragment JobDetail on Job {
    id queue jobType status priority attempts maxAttempts payload result error errorType
    createdAt startedAt completedAt scheduledFor timeoutMs idempotencyKey workerId batchId
    resultExpired resultExpiresAt
    attemptHistory {
      attempt workerId startedAt finishedAt outcome errorType error durationMs
      retryDecision { retry delayMs successProbability reason }
    }
    dependsOn { id }
    progress { ...JobProgressDetail }
  }
`);

export const JobProgressSub = graphql(`
  subscription JobProgress($jobId: ID!) {
    jobProgress(jobId: $jobId) { ...JobProgressDetail }
  }
`);

export const JobQuery = graphql(`
  query Job($id: ID!) {
    job(id: $id) { ...JobDetail }
  }
`);

export const JobUpdatedSub = graphql(`
  subscription JobUpdated($id: ID!) {
    jobUpdated(id: $id) { ...JobDetail }
  }
`);

export const JobGraphQuery = graphql(`
  query JobGraph($id: ID!) {
    job(id: $id) {
      id
      dependencyGraph {
        nodes { id jobType status queue }
        edges { dependency dependent }
        truncated
      }
    }
  }
`);

export const RetryJob = graphql(`
  mutation RetryJob($id: ID!) { retry(id: $id) { id status } }
`);
export const CancelJob = graphql(`
  mutation CancelJob($id: ID!) { cancel(id: $id) { id status cancelRequested } }
`);
export const SubmitJob = graphql(`
  mutation SubmitJob($input: SubmitJobInput!) { submit(input: $input) { id status queue duplicate } }
`);
