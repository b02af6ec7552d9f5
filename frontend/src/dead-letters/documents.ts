import { graphql } from "../gql";

export const DeadLettersQuery = graphql(`
  query DeadLetters($filter: DlqFilterInput, $first: Int!, $after: String) {
    deadLetters(filter: $filter, first: $first, after: $after) {
      jobs { id queue jobType errorType error attempts completedAt }
      nextCursor
    }
    deadLetterCount(filter: $filter)
  }
`);

export const DeadLetterCount = graphql(`
  query DeadLetterCount($filter: DlqFilterInput) { deadLetterCount(filter: $filter) }
`);

export const RetryDeadLetters = graphql(`
  mutation RetryDeadLetters($filter: DlqFilterInput!) { retryDeadLetters(filter: $filter) { count } }
`);
export const DeleteDeadLetters = graphql(`
  mutation DeleteDeadLetters($filter: DlqFilterInput!) { deleteDeadLetters(filter: $filter) { count } }
`);

export const DlqInsightsQuery = graphql(`
  query DlqInsights($queue: String, $jobType: String) {
    dlqInsights(queue: $queue, jobType: $jobType) {
      analyzed
      complete
      groups { groupId template count jobTypes queues errorTypes retryable evidence suggestion lastSeen }
    }
  }
`);

export const RetryDlqGroup = graphql(`
  mutation RetryDlqGroup($groupId: String!, $queue: String, $jobType: String) {
    retryDlqGroup(groupId: $groupId, queue: $queue, jobType: $jobType) { count }
  }
`);
