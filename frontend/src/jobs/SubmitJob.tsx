import { useState, type FormEvent } from "react";
import { Button, Group, Modal, NumberInput, Stack, TextInput, Textarea } from "@mantine/core";
import { useMutation } from "urql";
import { ErrorNote } from "../ui/Errors";
import { SubmitJob } from "./documents";
import { PredictSuccess } from "./PredictSuccess";

export function SubmitJobForm({ onSubmitted, onCancel }: { onSubmitted: (id: string) => void; onCancel: () => void }) {
  const [queue, setQueue] = useState("default");
  const [jobType, setJobType] = useState("");
  const [payload, setPayload] = useState("{}");
  const [priority, setPriority] = useState<string | number>("");
  const [maxAttempts, setMaxAttempts] = useState<string | number>("");
  const [delayMs, setDelayMs] = useState<string | number>("");
  const [payloadError, setPayloadError] = useState<string | null>(null);
  const [res, submit] = useMutation(SubmitJob);

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload || "{}");
    } catch {
      setPayloadError("Payload is not valid JSON");
      return;
    }
    setPayloadError(null);
    const r = await submit({
      input: {
        queue, jobType, payload: parsed,
        priority: priority === "" ? null : Number(priority),
        maxAttempts: maxAttempts === "" ? null : Number(maxAttempts),
        delayMs: delayMs === "" ? null : Number(delayMs),
      },
    });
    if (r.data) onSubmitted(r.data.submit.id);
  }

  return (
    <form onSubmit={onSubmit} aria-label="Submit a job">
      <Stack>
        <TextInput label="Queue" value={queue} onChange={(e) => setQueue(e.currentTarget.value)} required />
        <TextInput label="Job type" value={jobType} onChange={(e) => setJobType(e.currentTarget.value)} required placeholder="demo.noop" />
        <Textarea label="Payload (JSON)" value={payload} onChange={(e) => setPayload(e.currentTarget.value)} autosize minRows={3} error={payloadError} styles={{ input: { fontFamily: "monospace" } }} />
        <Group grow>
          <NumberInput label="Priority" value={priority} onChange={setPriority} />
          <NumberInput label="Max attempts" value={maxAttempts} onChange={setMaxAttempts} min={1} />
          <NumberInput label="Delay (ms)" value={delayMs} onChange={setDelayMs} min={0} />
        </Group>
        <PredictSuccess jobType={jobType} queue={queue} payload={payload} />
        <ErrorNote error={res.error} />
        <Group justify="flex-end">
          <Button variant="default" onClick={onCancel}>Cancel</Button>
          <Button type="submit" loading={res.fetching}>Submit</Button>
        </Group>
      </Stack>
    </form>
  );
}

export function SubmitJobButton({ onSubmitted }: { onSubmitted: (id: string) => void }) {
  const [open, setOpen] = useState(false);
  return (
    <>
      <Button onClick={() => setOpen(true)}>Submit job</Button>
      <Modal opened={open} onClose={() => setOpen(false)} title="Submit a job" size="lg">
        <SubmitJobForm onCancel={() => setOpen(false)} onSubmitted={(id) => { setOpen(false); onSubmitted(id); }} />
      </Modal>
    </>
  );
}
