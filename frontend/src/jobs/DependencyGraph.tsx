import "@xyflow/react/dist/style.css";
import { useMemo } from "react";
import { Background, Controls, Position, ReactFlow, type Edge, type Node } from "@xyflow/react";
import { useComputedColorScheme, Text } from "@mantine/core";
import { useNavigate } from "react-router";
import { useQuery } from "urql";
import { JobGraphQuery } from "./documents";

const COLORS: Record<string, string> = {
  COMPLETED: "#2f9e44", FAILED: "#e03131", DEAD_LETTER: "#9c36b5", PROCESSING: "#f08c00",
  PENDING: "#1971c2", WAITING: "#868e96", SCHEDULED: "#0c8599", CANCELLED: "#868e96",
};

/** Layered layout: a node's column is the length of its longest chain of dependencies. */
export function layout(nodes: { id: string }[], edges: { dependency: string; dependent: string }[]) {
  const deps = new Map<string, string[]>();
  for (const e of edges) deps.set(e.dependent, [...(deps.get(e.dependent) ?? []), e.dependency]);
  const depth = new Map<string, number>();
  const visit = (id: string, seen: Set<string>): number => {
    if (depth.has(id)) return depth.get(id)!;
    if (seen.has(id)) return 0;
    seen.add(id);
    const d = Math.max(-1, ...(deps.get(id) ?? []).map((p) => visit(p, seen))) + 1;
    depth.set(id, d);
    return d;
  };
  nodes.forEach((n) => visit(n.id, new Set()));
  const rows = new Map<number, number>();
  return new Map(nodes.map((n) => {
    const col = depth.get(n.id) ?? 0;
    const row = rows.get(col) ?? 0;
    rows.set(col, row + 1);
    return [n.id, { x: col * 220, y: row * 90 }];
  }));
}

export default function DependencyGraph({ jobId }: { jobId: string }) {
  const navigate = useNavigate();
  const scheme = useComputedColorScheme("light");
  const [{ data }] = useQuery({ query: JobGraphQuery, variables: { id: jobId } });
  const g = data?.job?.dependencyGraph;
  const { nodes, edges } = useMemo(() => {
    if (!g) return { nodes: [] as Node[], edges: [] as Edge[] };
    const pos = layout(g.nodes, g.edges);
    return {
      nodes: g.nodes.map((n): Node => ({
        id: n.id,
        position: pos.get(n.id)!,
        // dependencies on the left, dependents on the right
        sourcePosition: Position.Right,
        targetPosition: Position.Left,
        data: { label: `${n.jobType} · ${n.status.toLowerCase()}` },
        style: { border: `2px solid ${COLORS[n.status] ?? "#868e96"}`, fontWeight: n.id === jobId ? 700 : 400, width: 180 },
      })),
      edges: g.edges.map((e): Edge => ({ id: `${e.dependency}-${e.dependent}`, source: e.dependency, target: e.dependent, animated: true })),
    };
  }, [g, jobId]);
  return (
    <div style={{ height: 320 }} aria-label="Dependency graph" role="figure">
      <ReactFlow nodes={nodes} edges={edges} fitView colorMode={scheme} onNodeClick={(_, n) => navigate(`/jobs/${n.id}`)} nodesDraggable={false}>
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
      {g?.truncated && <Text size="xs">Graph truncated.</Text>}
    </div>
  );
}
