import { graphql } from "../gql";

export const SchedulesQuery = graphql(`
  query Schedules {
    scheduledJobs {
      id name queue jobType payload schedule timezone enabled overlapPolicy catchUp priority
      maxAttempts timeoutMs nextRunAt lastRunAt lastJobId nextRuns
    }
  }
`);
export const CreateSchedule = graphql(`
  mutation CreateSchedule($input: ScheduleInput!) { createSchedule(input: $input) { id name nextRuns } }
`);
export const UpdateSchedule = graphql(`
  mutation UpdateSchedule($id: ID!, $input: ScheduleInput!) { updateSchedule(id: $id, input: $input) { id name enabled nextRuns } }
`);
export const DeleteSchedule = graphql(`
  mutation DeleteSchedule($id: ID!) { deleteSchedule(id: $id) }
`);
