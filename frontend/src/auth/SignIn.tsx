import { useState, type FormEvent } from "react";
import { Alert, Button, Center, Paper, PasswordInput, Stack, Text, Title } from "@mantine/core";
import { checkKey, type Role } from "./session";

export function SignIn({ onSignedIn }: { onSignedIn: (key: string, role: Role, name: string) => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const v = await checkKey(key.trim());
      onSignedIn(key.trim(), v.role, v.name);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Center mih="100vh" component="main">
      <Paper withBorder p="xl" w={420} radius="md">
        <form onSubmit={submit} aria-label="Sign in">
          <Stack>
            <Title order={1} size="h2">Jobline</Title>
            <Text size="sm" c="dimmed">
              Sign in with an API key (<code>jobline keys create</code>; <code>make run</code> prints a local admin key).
              It is kept for this browser tab only.
            </Text>
            <PasswordInput label="API key" value={key} onChange={(e) => setKey(e.currentTarget.value)} required autoFocus />
            {error && <Alert color="red" role="alert">{error}</Alert>}
            <Button type="submit" loading={busy}>Sign in</Button>
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}
