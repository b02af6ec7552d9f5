import { graphql } from "../gql";

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
