import { Code } from "@mantine/core";

/** Pretty JSON as text: readable, selectable, and safe (never rendered as HTML). */
export function JsonView({ value, label }: { value: unknown; label: string }) {
  const text = value === undefined || value === null ? "null" : JSON.stringify(value, null, 2);
  return (
    // tabIndex: a region that may scroll must be reachable by keyboard (axe scrollable-region-focusable)
    <Code block tabIndex={0} aria-label={label} style={{ maxHeight: 320, overflow: "auto", whiteSpace: "pre-wrap", overflowWrap: "anywhere" }}>
      {text}
    </Code>
  );
}
