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
