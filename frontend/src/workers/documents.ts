import { graphql } from "../gql";

export const WorkersQuery = graphql(`
  query Workers {
    workers { id group state quiet command inFlight version queues concurrency host pid status running currentJobs startedAt lastSeenAt uptimeMs processed failed cpuPercent rssBytes }
    workerGroups { name desired actual draining busy capacity utilization autoscale scaledAt scaledReason crashesLastHour }
  }
`);

export const WorkerEventsSub = graphql(`
  subscription WorkerEvents { workerEvents { id type } }
`);

export const WorkerGroupHistory = graphql(`
  query WorkerGroupHistory {
    workerGroups { name history(minutes: 120) { minute desired actual busy capacity crashes utilization } crashes(limit: 10) { workerId at exitCode detail } }
  }
`);

export const WorkerLogsQuery = graphql(`
  query WorkerLogs($id: String!, $lines: Int!) { workerLogs(id: $id, lines: $lines) }
`);

export const ScaleGroup = graphql(`
  mutation ScaleWorkerGroup($name: String!, $desired: Int, $step: Int) {
    scaleWorkerGroup(name: $name, desired: $desired, step: $step) { name desired }
  }
`);

export const SetAutoscale = graphql(`
  mutation SetWorkerGroupAutoscale($name: String!, $autoscale: AutoscaleInput) {
    setWorkerGroupAutoscale(name: $name, autoscale: $autoscale) { name desired autoscale }
  }
`);

export const RestartWorker = graphql(`
  mutation RestartWorker($id: String!) { restartWorker(id: $id) { id command } }
`);
export const QuietWorker = graphql(`
  mutation QuietWorker($id: String!) { quietWorker(id: $id) { id command } }
`);
export const ResumeWorker = graphql(`
  mutation ResumeWorker($id: String!) { resumeWorker(id: $id) { id command } }
`);
export const StopWorker = graphql(`
  mutation StopWorker($id: String!) { stopWorker(id: $id) { id command } }
`);
