"""The dependency graph around a job: its ancestors (what it waits for, transitively) and its
descendants (what waits for it), as nodes and edges, for ``GET /api/v1/jobs/{id}/graph``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from jobline.shared.core.jobs import translate_errors
from jobline.shared.core.models import Status
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import NotFound

# UNION (not UNION ALL) drops repeated (id, depth) pairs, and the depth bound stops the walk, so
# a diamond-heavy graph costs at most nodes x depth rows. Edges only point from a job to jobs
# that existed before it, so the graph has no cycles to begin with.
GRAPH_NODES = """
WITH RECURSIVE up(id, depth) AS (
    SELECT $1::uuid, 0
    UNION
    SELECT d.depends_on, up.depth + 1
      FROM job_dependencies d JOIN up ON d.job_id = up.id
     WHERE up.depth < $2
), down(id, depth) AS (
    SELECT $1::uuid, 0
    UNION
    SELECT d.job_id, down.depth + 1
      FROM job_dependencies d JOIN down ON d.depends_on = down.id
     WHERE down.depth < $2
), ids AS (
    SELECT id FROM up UNION SELECT id FROM down
)
SELECT j.id, j.job_type, j.status, j.queue_name
  FROM jobs j JOIN (SELECT id FROM ids ORDER BY id <> $1, id LIMIT $3) i ON i.id = j.id
"""

GRAPH_EDGES = """
SELECT depends_on, job_id FROM job_dependencies
 WHERE job_id = ANY($1::uuid[]) AND depends_on = ANY($1::uuid[])
 ORDER BY depends_on, job_id
"""

MAX_DEPTH = 100
MAX_NODES = 1_000


@dataclass(frozen=True, slots=True)
class Node:
    id: uuid.UUID
    job_type: str
    status: Status
    queue: str


@dataclass(frozen=True, slots=True)
class Graph:
    job_id: uuid.UUID
    nodes: list[Node]
    #: (dependency, dependent): the second waits for the first.
    edges: list[tuple[uuid.UUID, uuid.UUID]]
    #: True when MAX_NODES was reached and some nodes were left out.
    truncated: bool


@translate_errors
async def job_graph(deps: Deps, job_id: uuid.UUID, *, max_nodes: int = MAX_NODES) -> Graph:
    rows = await deps.pool.fetch(GRAPH_NODES, job_id, MAX_DEPTH, max_nodes + 1)
    if not any(r["id"] == job_id for r in rows) and await deps.pool.fetchval(
            "SELECT 1 FROM jobs WHERE id = $1", job_id) is None:
        raise NotFound(f"job {job_id} not found")
    truncated = len(rows) > max_nodes
    rows = sorted(rows, key=lambda r: (r["id"] != job_id, r["id"]))[:max_nodes]
    nodes = [Node(r["id"], r["job_type"], Status(r["status"]), r["queue_name"]) for r in rows]
    edges = [(r["depends_on"], r["job_id"]) for r in await deps.pool.fetch(
        GRAPH_EDGES, [n.id for n in nodes])]
    return Graph(job_id, nodes, edges, truncated)
