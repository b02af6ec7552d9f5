import { Code } from "@mantine/core";

/** Pretty JSON as text: readable, selectable, and safe (never rendered as HTML). */
export function JsonView({ value, label }: { value: unknown; label: string }) {
  const text = value === undefined || value === null ? "null" : JSON.stringify(value, null, 2);
  return (
    <Code block aria-label={label} style={{ maxHeight: 320, overflow: "auto", whiteSpace: "pre-wrap" }}>
      {text}
    </Code>
  );
}
