import { Alert } from "@mantine/core";
import type { CombinedError } from "urql";

export function ErrorNote({ error }: { error?: CombinedError | Error | null }) {
  if (!error) return null;
  const msg = "graphQLErrors" in error && error.graphQLErrors.length
    ? error.graphQLErrors.map((e) => e.message).join("; ")
    : error.message;
  return <Alert color="red" role="alert" title="Error">{msg}</Alert>;
}
