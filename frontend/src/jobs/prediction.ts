import { graphql } from "../gql";

// Failure prediction for the submit form (issue 17, item 1). A developer key may ask; the
// server answers NOT_FOUND before a model is trained and UNAVAILABLE without the [ai] extra.
export const PredictSuccessQuery = graphql(`
  query PredictSuccess($jobType: String!, $queue: String, $payload: JSON!) {
    predictSuccess(jobType: $jobType, queue: $queue, payload: $payload) {
      successProbability
      reasons
      suggestions
      model { version trainedAt rocAuc prAuc brier }
    }
  }
`);
