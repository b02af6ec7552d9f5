import { graphql } from "../gql";

export const AlertRulesQuery = graphql(`
  query AlertRules {
    alertRules {
      id name builtin description severity enabled state stateSince lastValue lastEvaluatedAt
      forS renotifyS channelIds alertId
      condition { metric op threshold windowS targetMs minSamples }
      scope { queue jobType }
    }
    alertChannels { id name kind enabled }
  }
`);
export const AlertChannelsQuery = graphql(`
  query AlertChannels { alertChannels { id name kind config enabled } }
`);
export const AlertHistoryQuery = graphql(`
  query AlertHistory($status: String, $ruleId: ID, $queue: String, $after: String) {
    alerts(status: $status, ruleId: $ruleId, queue: $queue, first: 50, after: $after) {
      firing nextCursor
      alerts {
        id ruleId ruleName severity status value peakValue summary startedAt firedAt resolvedAt
        silenced acknowledgedAt acknowledgedBy
        scope { queue jobType }
        deliveries { id channelName kind recipient event status attempts error }
      }
    }
  }
`);
export const FiringAlertsQuery = graphql(`
  query FiringAlerts { alerts(status: "firing", first: 5) { firing alerts { id ruleName severity } } }
`);
export const CreateAlertRule = graphql(`
  mutation CreateAlertRule($input: AlertRuleInput!) { createAlertRule(input: $input) { id } }
`);
export const UpdateAlertRule = graphql(`
  mutation UpdateAlertRule($id: ID!, $input: AlertRuleInput!) { updateAlertRule(id: $id, input: $input) { id enabled } }
`);
export const DeleteAlertRule = graphql(`
  mutation DeleteAlertRule($id: ID!) { deleteAlertRule(id: $id) }
`);
export const CreateAlertChannel = graphql(`
  mutation CreateAlertChannel($input: AlertChannelInput!) { createAlertChannel(input: $input) { id } }
`);
export const UpdateAlertChannel = graphql(`
  mutation UpdateAlertChannel($id: ID!, $input: AlertChannelInput!) { updateAlertChannel(id: $id, input: $input) { id } }
`);
export const DeleteAlertChannel = graphql(`
  mutation DeleteAlertChannel($id: ID!) { deleteAlertChannel(id: $id) }
`);
export const TestAlertChannel = graphql(`
  mutation TestAlertChannel($id: ID!) { testAlertChannel(id: $id) { id status } }
`);
export const AlertDeliveryQuery = graphql(`
  query AlertDelivery($id: ID!) { alertDelivery(id: $id) { id status attempts error } }
`);
export const AcknowledgeAlert = graphql(`
  mutation AcknowledgeAlert($id: ID!) { acknowledgeAlert(id: $id) { id acknowledgedAt } }
`);
export const CreateAlertSilence = graphql(`
  mutation CreateAlertSilence($input: AlertSilenceInput!) { createAlertSilence(input: $input) { id endsAt } }
`);
