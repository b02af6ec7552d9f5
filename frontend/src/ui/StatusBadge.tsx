import { Badge } from "@mantine/core";

const COLORS: Record<string, string> = {
  WAITING: "gray",
  PENDING: "blue",
  SCHEDULED: "cyan",
  PROCESSING: "yellow",
  COMPLETED: "green",
  FAILED: "red",
  DEAD_LETTER: "grape",
  CANCELLED: "gray",
};

export function StatusBadge({ status }: { status: string }) {
  const s = status.toUpperCase();
  return (
    <Badge color={COLORS[s] ?? "gray"} variant="light" data-status={s}>
      {s.replace("_", " ").toLowerCase()}
    </Badge>
  );
}
