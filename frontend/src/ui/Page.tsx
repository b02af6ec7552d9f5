import { Group, Stack, Title } from "@mantine/core";
import type { ReactNode } from "react";

export function Page({ title, actions, children }: { title: string; actions?: ReactNode; children: ReactNode }) {
  return (
    <Stack gap="md">
      <Group justify="space-between" align="center">
        <Title order={1} size="h2">{title}</Title>
        {actions}
      </Group>
      {children}
    </Stack>
  );
}
