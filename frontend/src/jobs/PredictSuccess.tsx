import { useState } from "react";
import { Alert, Badge, Box, Button, Group, List, Paper, Progress, Stack, Text } from "@mantine/core";
import { useQuery } from "urql";
import { AiNotice } from "../ui/AiNotice";
import { fmtTime } from "../ui/format";
import { PredictSuccessQuery } from "./prediction";

interface Asked {
  jobType: string;
  queue: string | null;
  payload: Record<string, unknown>;
}

function pct(p: number): string {
  return `${(p * 100).toFixed(p >= 0.995 || p <= 0.005 ? 1 : 0)}%`;
}

function color(p: number): string {
  return p >= 0.9 ? "green" : p >= 0.6 ? "yellow" : "red";
}

/** "Predict success" for the submit form: the trained model's success probability for the job
 *  as typed, its reasons and suggestions (computed from the model's own attributions on the
 *  server), and which model said so. Asks only on click: a prediction is never automatic. */
export function PredictSuccess({ jobType, queue, payload }: { jobType: string; queue: string; payload: string }) {
  const [asked, setAsked] = useState<Asked | null>(null);
  const [inputError, setInputError] = useState<string | null>(null);
  const [res, reexecute] = useQuery({
    query: PredictSuccessQuery,
    variables: asked ?? { jobType: "", queue: null, payload: {} },
    pause: !asked,
    requestPolicy: "network-only",
  });

  function predict() {
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload || "{}");
    } catch {
      setInputError("Payload is not valid JSON");
      return;
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      setInputError("Payload must be a JSON object to predict");
      return;
    }
    if (!jobType.trim()) {
      setInputError("Enter a job type to predict");
      return;
    }
    setInputError(null);
    const next: Asked = { jobType: jobType.trim(), queue: queue.trim() || null, payload: parsed as Record<string, unknown> };
    if (asked && JSON.stringify(asked) === JSON.stringify(next)) reexecute({ requestPolicy: "network-only" });
    else setAsked(next);
  }

  const p = asked ? res.data?.predictSuccess : undefined;
  return (
    <Stack gap="xs">
      <Group>
        <Button variant="light" onClick={predict} loading={!!asked && res.fetching}>Predict success</Button>
        <Text size="xs" c="dimmed">From the model trained on this system's history; nothing is submitted.</Text>
      </Group>
      <Box role="status" aria-label="Success prediction" aria-live="polite">
        {inputError && <Alert color="red" title="Cannot predict">{inputError}</Alert>}
        {!inputError && asked && <AiNotice error={res.error} />}
        {!inputError && p && !res.error && (
          <Paper withBorder p="sm">
            <Stack gap="xs">
              <Group justify="space-between" align="baseline">
                <Text fw={600}>
                  Success probability{" "}
                  <Text span fz="xl" fw={700} c={`${color(p.successProbability)}.8`} data-testid="success-probability">
                    {pct(p.successProbability)}
                  </Text>
                </Text>
                <Badge variant="light" color="gray">
                  model v{p.model.version} · ROC-AUC {p.model.rocAuc === null || p.model.rocAuc === undefined ? "n/a" : p.model.rocAuc.toFixed(3)}
                </Badge>
              </Group>
              <Progress value={p.successProbability * 100} color={color(p.successProbability)} aria-hidden />
              {p.reasons.length > 0 && (
                <div>
                  <Text size="sm" fw={600} id="predict-reasons">Reasons</Text>
                  <List size="sm" aria-labelledby="predict-reasons">
                    {p.reasons.map((r) => <List.Item key={r}>{r}</List.Item>)}
                  </List>
                </div>
              )}
              {p.suggestions.length > 0 && (
                <div>
                  <Text size="sm" fw={600} id="predict-suggestions">Suggestions</Text>
                  <List size="sm" aria-labelledby="predict-suggestions">
                    {p.suggestions.map((s) => <List.Item key={s}>{s}</List.Item>)}
                  </List>
                </div>
              )}
              <Text size="xs" c="dimmed">
                Trained {fmtTime(p.model.trainedAt)}
                {p.model.prAuc !== null && p.model.prAuc !== undefined && ` · PR-AUC ${p.model.prAuc.toFixed(3)}`}
                {p.model.brier !== null && p.model.brier !== undefined && ` · Brier ${p.model.brier.toFixed(3)}`}
              </Text>
            </Stack>
          </Paper>
        )}
      </Box>
    </Stack>
  );
}
