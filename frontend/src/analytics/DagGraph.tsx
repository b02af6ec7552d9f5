// The DAG drawing, loaded only on the Dependencies page (@xyflow/react is ~60 KB gzipped).
import "@xyflow/react/dist/style.css";
import { useMemo } from "react";
import { Background, Controls, MarkerType, Position, ReactFlow, type Edge, type Node } from "@xyflow/react";
import { useComputedColorScheme } from "@mantine/core";
import { layout } from "../jobs/DependencyGraph";
import type { AnalyticsCriticalPathQuery } from "./gql/graphql";
import { fmtDuration } from "./ui";

type Cp = AnalyticsCriticalPathQuery["criticalPath"];

const STATUS: Record<string, string> = {
  COMPLETED: "#2f9e44", FAILED: "#e03131", DEAD_LETTER: "#9c36b5", PROCESSING: "#f08c00",
  PENDING: "#1971c2", WAITING: "#868e96", SCHEDULED: "#0c8599", CANCELLED: "#868e96",
};
const CRITICAL = "#e8590c";

/** Edges of the critical path: consecutive ids of `path`, either way round. */
export function pathEdges(path: readonly string[]): Set<string> {
  const s = new Set<string>();
  for (let i = 1; i < path.length; i++) {
    s.add(`${path[i - 1]}>${path[i]}`);
    s.add(`${path[i]}>${path[i - 1]}`);
  }
  return s;
}

export default function DagGraph({ cp, onPick }: { cp: Cp; onPick: (jobId: string) => void }) {
  const scheme = useComputedColorScheme("light");
  const { nodes, edges } = useMemo(() => {
    const pos = layout(cp.nodes.map((n) => ({ id: n.jobId })), cp.edges.map((e) => ({ dependency: e.from, dependent: e.to })));
    const onPath = pathEdges(cp.path);
    return {
      nodes: cp.nodes.map((n): Node => ({
        id: n.jobId,
        position: pos.get(n.jobId)!,
        sourcePosition: Position.Right,
        targetPosition: Position.Left,
        data: { label: `${n.onCriticalPath ? "★ " : ""}${n.jobType} · ${n.status.toLowerCase().replace("_", " ")} · ${fmtDuration(n.durationMs)}` },
        style: {
          border: n.onCriticalPath ? `3px solid ${CRITICAL}` : `2px solid ${STATUS[n.status.toUpperCase()] ?? "#868e96"}`,
          fontWeight: n.jobId === cp.jobId || n.onCriticalPath ? 700 : 400,
          width: 190,
          boxShadow: n.onCriticalPath ? `0 0 0 3px ${CRITICAL}33` : undefined,
        },
      })),
      edges: cp.edges.map((e): Edge => {
        const critical = onPath.has(`${e.from}>${e.to}`);
        return {
          id: `${e.from}-${e.to}`, source: e.from, target: e.to, animated: critical,
          style: critical ? { stroke: CRITICAL, strokeWidth: 3 } : { strokeWidth: 1, opacity: 0.6 },
          markerEnd: { type: MarkerType.ArrowClosed, color: critical ? CRITICAL : undefined },
        };
      }),
    };
  }, [cp]);
  return (
    <div style={{ height: 420 }}>
      <ReactFlow nodes={nodes} edges={edges} fitView colorMode={scheme} nodesDraggable={false} onNodeClick={(_, n) => onPick(n.id)}>
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
