"""``/api/v1/job-batches`` (create, read) and ``/api/v1/jobs/{id}/graph`` (dependency DAG).

Thin shells over :mod:`jobline.shared.flow.batches` and :mod:`jobline.shared.flow.dag`: validate, one core
operation, serialise. Request/response models live here, next to their only endpoints.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, create_model
from pydantic.alias_generators import to_camel
from starlette.requests import Request
from starlette.responses import Response

from jobline.api.context import ctx
from jobline.api.docs import Op, Resp, documented
from jobline.api.errors import JSONResponse, by_method, endpoint
from jobline.api.jobs import job_id_param, read_bulk
from jobline.api.schemas import (
    StatusName,
    SubmittedOut,
    _In,
    _Out,
    iso_ms,
    submitted_json,
)
from jobline.shared.core.inputs import SubmitJobIn
from jobline.shared.flow import batches as core
from jobline.shared.flow import dag
from jobline.shared.platform.wire import wire_types, wire_values

# --- models --------------------------------------------------------------------------------


class BatchIn(_In):
    """``POST /api/v1/job-batches``. A job's ``dependsOn`` may hold the index of an earlier job
    of the batch. ``onComplete`` is submitted once every job of the batch has finished,
    successfully or not."""

    name: Annotated[str, Field(min_length=1, max_length=core.MAX_NAME, pattern=r"^[^\x00]*$")]
    jobs: Annotated[list[SubmitJobIn], Field(min_length=1)]
    on_complete: SubmitJobIn | None = None


class BatchCreatedOut(_Out):
    id: uuid.UUID
    name: str
    total: int
    jobs: list[SubmittedOut]
    on_complete_job_id: uuid.UUID | None


#: A batch's progress: derived field by field from the core's ``BatchStatus``, the one
#: declaration of this shape (its ``_ms`` times become ``At`` date-times).
_batch_fields: dict[str, Any] = {
    name: (hint, ...)
    for name, hint in wire_types(core.BatchStatus, time=datetime, ident=uuid.UUID).items()}
BatchOut = create_model("BatchOut", __base__=_Out, **_batch_fields)


class GraphNodeOut(_Out):
    id: uuid.UUID
    job_type: str
    status: StatusName
    queue: str


class GraphEdgeOut(_Out):
    #: The dependency.
    from_: Annotated[uuid.UUID, Field(alias="from")]
    #: The dependent: waits for ``from``.
    to: uuid.UUID


class GraphOut(_Out):
    job_id: uuid.UUID
    nodes: list[GraphNodeOut]
    edges: list[GraphEdgeOut]
    #: True when the graph was cut at the node limit.
    truncated: bool


def batch_json(b: core.BatchStatus) -> dict[str, Any]:
    return {to_camel(k): v for k, v in wire_values(b, time=iso_ms, ident=str).items()}


def graph_json(g: dag.Graph) -> dict[str, Any]:
    return {"jobId": str(g.job_id),
            "nodes": [{"id": str(n.id), "jobType": n.job_type, "status": n.status.value,
                       "queue": n.queue} for n in g.nodes],
            "edges": [{"from": str(a), "to": str(b)} for a, b in g.edges],
            "truncated": g.truncated}


# --- endpoints -----------------------------------------------------------------------------


@documented(Op(
    "createBatch", "Submit jobs as one batch, all or nothing, with an optional onComplete",
    body=BatchIn, responses={201: Resp("Stored", BatchCreatedOut)}, errors=(400, 413, 422, 503)))
@endpoint
async def create_batch(request: Request) -> Response:
    c = ctx(request)
    deps = c.require_deps()
    body = await read_bulk(request, BatchIn)
    now = deps.clock.now_ms()
    created = await core.create_batch(
        deps, body.name, [j.to_spec(now) for j in body.jobs],
        body.on_complete.to_spec(now) if body.on_complete is not None else None)
    return JSONResponse({
        "id": str(created.id), "name": created.name, "total": created.total,
        "jobs": [submitted_json(r) for r in created.jobs],
        "onCompleteJobId": (str(created.on_complete_job_id)
                            if created.on_complete_job_id is not None else None)},
        status_code=201)


@documented(Op(
    "getBatch", "Progress counts of a batch", responses={200: Resp("The batch", BatchOut)},
    errors=(404, 503)))
@endpoint
async def get_batch(request: Request) -> Response:
    batch_id: uuid.UUID = request.path_params["batchId"]
    return JSONResponse(batch_json(await core.get_batch(ctx(request).require_deps(), batch_id)))


@documented(Op(
    "getJobGraph", "The dependency DAG around a job: its ancestors and descendants",
    responses={200: Resp("Nodes and edges (from = dependency, to = dependent)", GraphOut)},
    errors=(404, 503)))
@endpoint
async def job_graph(request: Request) -> Response:
    g = await dag.job_graph(ctx(request).require_deps(), job_id_param(request))
    return JSONResponse(graph_json(g))


routes = [
    by_method("/api/v1/job-batches", {"POST": create_batch}, name="job_batches"),
    by_method("/api/v1/job-batches/{batchId:uuid}", {"GET": get_batch}, name="job_batch"),
    by_method("/api/v1/jobs/{jobId:uuid}/graph", {"GET": job_graph}, name="job_graph"),
]
