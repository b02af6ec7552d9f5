import { Alert } from "@mantine/core";
import type { CombinedError } from "urql";
import { ErrorNote } from "./Errors";

// The AI endpoints refuse in expected ways that are not faults: no model trained yet (NOT_FOUND),
// the [ai] extra not installed (UNAVAILABLE, a 503 over REST), too little history or a bad value
// (BAD_USER_INPUT). Those read as a notice with the server's own words (they say what to do);
// anything else is an ordinary error.
const TITLES: Record<string, string> = {
  NOT_FOUND: "No model yet",
  UNAVAILABLE: "AI features unavailable",
  BAD_USER_INPUT: "Cannot compute this",
};

export function AiNotice({ error }: { error?: CombinedError | null }) {
  if (!error) return null;
  const first = error.graphQLErrors[0];
  const code = typeof first?.extensions?.code === "string" ? first.extensions.code : "";
  const title = TITLES[code];
  if (!title) return <ErrorNote error={error} />;
  return (
    <Alert color="yellow" role="alert" title={title}>
      {error.graphQLErrors.map((e) => e.message).join("; ")}
    </Alert>
  );
}
