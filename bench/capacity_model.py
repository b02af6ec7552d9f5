"""Capacity model: N Valkey shards, PostgreSQL cores, API processes, worker cores, one relay.

A deterministic projection, not a load test. It reads the CPU cost of one job in every process,
as measured on this 2-core machine by the benchmarks (``bench/results/*.json``, read at run
time), and answers, for a given deployment and load:

* each component's utilisation (load x CPU per job / the CPU its units own);
* the bottleneck: the component with the highest utilisation, i.e. the one that saturates first
  as load grows;
* the sustainable rate: the load at which the bottleneck reaches the target utilisation
  (``TARGET_UTILISATION``, 70 %: queueing headroom, since waits grow without bound as a
  component approaches 100 %);
* the minimal deployment for a load (fewest units per component that keep every component at or
  under the target), and the order in which units are added when growing today's deployment.

Invariants (``tests/test_capacity_model.py``): the bottleneck is the component of highest
utilisation; giving it twice the units either moves the bottleneck or raises the ceiling; the
same inputs give byte-identical output.

What the model assumes, stated rather than hidden:

* CPU per job is constant per unit (linear scaling). For Valkey shards that is a projection of
  the per-node cost: Redis Cluster is not built yet (docs/redis-keys.md), and one queue's keys
  live on one shard, so one queue never gets more than one shard.
* The relay and the scheduler are singletons (the relay holds an advisory lock to keep ``seq``
  order, docs/events.md), so adding instances adds failover, not capacity.
* A PostgreSQL primary scales by cores up to ``PG_MAX_PRIMARY_CORES``; past it the model reports
  the write path as not fitting one primary (a design change, not a bigger box). Read replicas
  (``DATABASE_READ_URL``, docs/deploy.md) take dashboard/listing reads, which are not in the
  per-job cost at all.

    python bench/capacity_model.py                 # writes bench/results/capacity_model.{json,md}
    python bench/capacity_model.py --out /tmp/x    # anywhere else
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

#: Keep every component at or under this share of its CPU: an M/M/1-like queue at 70 % busy
#: already waits ~2.3x its service time; past ~85 % a burst grows a backlog quickly.
TARGET_UTILISATION = 0.70
#: "Today's load": the seed's normal rate, 1,000 submits/s (docs/performance.md, scenario 4).
TODAY_JOBS_PER_S = 1_000.0
LOADS: dict[str, float] = {"today": 1.0, "10x": 10.0, "100x": 100.0}
#: A job submitted once and completed on its first attempt writes three events:
#: jobs.submitted, jobs.started, jobs.completed (docs/events.md).
EVENTS_PER_JOB = 3
#: Partitions per topic Jobline creates today (docs/events.md, "Kafka").
KAFKA_PARTITIONS_TODAY = 3
#: One big PostgreSQL primary; beyond it the write path does not fit one server.
PG_MAX_PRIMARY_CORES = 64
#: max_connections of the embedded server (jobline/local/postgres.py); PostgreSQL's default is 100.
PG_MAX_CONNECTIONS = 300
#: Pool sizes per process (jobline/cli.py, Settings.pg_pool_size, functions/_runtime.py).
POOL_API = 10
POOL_WORKER = 5            # min(max(4, concurrency // 5), 20) at concurrency 25
POOL_RELAY = 2
POOL_SCHEDULER = 6
POOL_LAMBDA = 2            # JOBLINE_LAMBDA_PG_POOL
#: AWS Lambda's default concurrent-executions quota per account and region (AWS documentation).
LAMBDA_ACCOUNT_CONCURRENCY = 1_000
#: One plain submit's PostgreSQL statement, warm (docs/performance.md, "One statement per plain
#: submit": 0.67 -> 0.41 ms); not in a results file, so quoted here with its source.
SUBMIT_TXN_MS = 0.41
#: Cores per host when packing the stateless processes (hosts like this machine).
HOST_CORES = 2


@dataclass(frozen=True)
class Component:
    """One kind of process. ``us_per_job`` is CPU microseconds per job on one unit (a shard, a
    core, a process); a unit is one core's worth of CPU. ``max_units`` None = add freely."""

    name: str
    unit: str
    us_per_job: float
    source: str
    max_units: int | None = None
    built: bool = True        # False: more than one unit is a projection of something not built


@dataclass(frozen=True)
class Inputs:
    components: tuple[Component, ...]
    target_utilisation: float = TARGET_UTILISATION
    today_jobs_per_s: float = TODAY_JOBS_PER_S
    events_per_job: int = EVENTS_PER_JOB
    kafka_events_per_s_per_consumer: float = 0.0
    kafka_partitions_today: int = KAFKA_PARTITIONS_TODAY
    consumer_groups: int = 1
    lambda_call_ms: float = 0.0
    lambda_call_source: str = "given"
    lambda_txn_ms: float = 0.0
    pg_bulk_us_per_row: float = 0.0
    pg_max_connections: int = PG_MAX_CONNECTIONS
    sources: tuple[tuple[str, str], ...] = ()

    def component(self, name: str) -> Component:
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(name)

    def with_units_capacity(self, name: str, factor: float) -> Inputs:
        """The same inputs with one component's CPU per job divided by ``factor`` (a unit that
        does ``factor`` times the work); used to check the model's monotonicity."""
        comps = tuple(replace(c, us_per_job=c.us_per_job / factor) if c.name == name else c
                      for c in self.components)
        return replace(self, components=comps)


Deployment = dict[str, int]


def _load(results: Path, name: str) -> dict[str, Any]:
    with (results / f"{name}.json").open() as f:
        data: dict[str, Any] = json.load(f)
    return data


def load_inputs(results: Path = RESULTS, *, handler_us: float = 0.0) -> Inputs:
    """Per-job costs from the benchmark results. A job = one HTTP submit (``cpu_split`` http:
    API, PostgreSQL and Valkey per submit) + its processing in the shipped stack with events on
    (``shipped`` on: workers, PostgreSQL, Valkey, relay, scheduler per processed job).
    ``handler_us``: your handler's own CPU per job (0 = the benchmarks' no-op)."""
    http = _load(results, "cpu_split")["results"]["http"]["cpu_us_per_job"]
    on = _load(results, "shipped")["configs"]["on"]["cpu_us_per_job_median"]
    kafka = _load(results, "events")["results"]["kafka"]["events_per_s"]
    thr = _load(results, "throughput")["results"]
    # shipped.py times the drain: the relay published jobs.started + jobs.completed (2 of the 3
    # events) inside the window, jobs.submitted during the submit before it. Scaled to 3 events.
    relay = on["relay"] * EVENTS_PER_JOB / 2
    comps = (
        Component("api", "process", http["api"],
                  "cpu_split.json http: api µs per POST /api/v1/jobs"),
        Component("postgres", "core", http["postgres"] + on["postgres"],
                  "cpu_split.json http postgres + shipped.json on postgres",
                  max_units=PG_MAX_PRIMARY_CORES),
        Component("valkey", "shard", http["valkey"] + on["valkey"],
                  "cpu_split.json http valkey + shipped.json on valkey", built=False),
        Component("workers", "core", on["workers"] + handler_us,
                  "shipped.json on workers (no-op handler)"
                  + (f" + handler {handler_us:g} µs" if handler_us else "")),
        Component("relay", "process", relay,
                  "shipped.json on relay x 3/2 (jobs.submitted relayed outside the drain)",
                  max_units=1),
        Component("scheduler", "process", on["scheduler"], "shipped.json on scheduler",
                  max_units=1),
    )
    return Inputs(
        components=comps,
        kafka_events_per_s_per_consumer=kafka,
        # One submit at a time per Lambda container: the in-process sequential submit's time.
        lambda_call_ms=1000.0 / thr["submit_sequential_jobs_per_s"]["median"],
        # docs/performance.md, "One statement per plain submit": 0.41 ms per submit, warm -- the
        # time a submit holds a PostgreSQL connection, which is what a proxy multiplexes
        lambda_txn_ms=SUBMIT_TXN_MS,
        lambda_call_source="one sequential in-process submit, throughput.json; a real Lambda "
                           "adds its network round trips: --lambda-call-ms",
        pg_bulk_us_per_row=_load(results, "pg_ceiling")["results"]["shipped"]["pg_cpu_us_per_row"],
        sources=(
            ("cpu_split", "bench/results/cpu_split.json (2026-11-28, make bench)"),
            ("shipped", "bench/results/shipped.json (2026-12-06, events on, medians of 3)"),
            ("events", "bench/results/events.json (kafka: tansu, one consumer group)"),
            ("throughput", "bench/results/throughput.json (submit_sequential median)"),
            ("pg_ceiling", "bench/results/pg_ceiling.json (binary COPY, schema as shipped)"),
        ),
    )


def utilisation(inputs: Inputs, deployment: Deployment, jobs_per_s: float) -> dict[str, float]:
    """Share of each component's CPU a load uses: jobs/s x µs per job / (units x 1e6 µs/s)."""
    return {c.name: jobs_per_s * c.us_per_job / (deployment[c.name] * 1e6)
            for c in inputs.components}


def bottleneck(util: dict[str, float]) -> str:
    """The component of highest utilisation; ties go to the earlier component (stable)."""
    best = next(iter(util))
    for name, u in util.items():
        if u > util[best]:
            best = name
    return best


def unit_capacity(c: Component, target: float) -> float:
    """Jobs/s one unit sustains at the target utilisation."""
    return target * 1e6 / c.us_per_job


def ceiling(inputs: Inputs, deployment: Deployment,
            target: float | None = None) -> tuple[float, str]:
    """(jobs/s this deployment sustains with every component at or under ``target``, bottleneck)."""
    t = inputs.target_utilisation if target is None else target
    caps = {c.name: deployment[c.name] * unit_capacity(c, t) for c in inputs.components}
    name = bottleneck(utilisation(inputs, deployment, 1.0))
    return caps[name], name


def minimal_deployment(inputs: Inputs, jobs_per_s: float) -> tuple[Deployment, list[str]]:
    """Fewest units per component keeping each at or under the target; and the problems: a
    capped component (singleton, one primary) over the target at its cap."""
    dep: Deployment = {}
    problems: list[str] = []
    for c in inputs.components:
        need = max(1, math.ceil(jobs_per_s * c.us_per_job
                                / (inputs.target_utilisation * 1e6) - 1e-9))
        if c.max_units is not None and need > c.max_units:
            u = jobs_per_s * c.us_per_job / (c.max_units * 1e6)
            problems.append(f"{c.name}: needs {need} {_plural(c.unit, need)} at "
                            f"{inputs.target_utilisation:.0%}, capped at {c.max_units} "
                            f"({u:.0%} busy there)")
            need = c.max_units
        dep[c.name] = need
    return dep, problems


def grow(inputs: Inputs, start: Deployment, jobs_per_s: float) -> list[dict[str, Any]]:
    """Scale-out path: from ``start``, add one unit to the bottleneck until the load fits (or the
    bottleneck is capped). Each step: the ceiling before it, the bottleneck, what was added."""
    dep = dict(start)
    steps: list[dict[str, Any]] = []
    for _ in range(10_000):
        cap, name = ceiling(inputs, dep)
        if cap >= jobs_per_s:
            break
        c = inputs.component(name)
        if c.max_units is not None and dep[name] >= c.max_units:
            steps.append({"ceiling_jobs_per_s": round(cap), "bottleneck": name,
                          "add": None, "stuck": True})
            break
        steps.append({"ceiling_jobs_per_s": round(cap), "bottleneck": name,
                      "add": f"1 {c.unit} ({name})", "stuck": False})
        dep[name] += 1
    return steps


def saturation_order(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each component the first time it becomes the bottleneck on the way up, with the rate at
    which it first binds and how many units the whole path adds to it."""
    first: dict[str, dict[str, Any]] = {}
    for s in steps:
        entry = first.setdefault(s["bottleneck"], {"bottleneck": s["bottleneck"],
                                                   "binds_at_jobs_per_s": s["ceiling_jobs_per_s"],
                                                   "units_added": 0, "stuck": False})
        if s["stuck"]:
            entry["stuck"] = True
        else:
            entry["units_added"] += 1
    return list(first.values())


def single_host(inputs: Inputs, cores: int) -> dict[str, Any]:
    """Everything on one host of ``cores`` cores (this machine, ``make run``): the sum of every
    component's CPU per job shares the cores."""
    total = sum(c.us_per_job for c in inputs.components)
    return {"cores": cores, "total_us_per_job": round(total, 1),
            "ceiling_jobs_per_s_at_100": round(cores * 1e6 / total),
            "ceiling_jobs_per_s_at_target": round(cores * 1e6 * inputs.target_utilisation / total),
            "share_of_cpu": {c.name: round(c.us_per_job / total, 3) for c in inputs.components}}


def event_path(inputs: Inputs, jobs_per_s: float) -> dict[str, Any]:
    """Kafka: consumers per group to keep up at the target, and so partitions per topic (a
    partition feeds at most one consumer of a group; each group reads every event)."""
    events = jobs_per_s * inputs.events_per_job
    per_consumer = inputs.kafka_events_per_s_per_consumer * inputs.target_utilisation
    consumers = max(1, math.ceil(events / per_consumer - 1e-9))
    return {"events_per_s": round(events), "consumers_per_group": consumers,
            "partitions_per_topic_min": consumers,
            "fits_today_partitions": consumers <= inputs.kafka_partitions_today,
            "consumer_processes": consumers * inputs.consumer_groups,
            "relay_utilisation": round(jobs_per_s * inputs.component("relay").us_per_job / 1e6, 3)}


def server_connections(dep: Deployment) -> int:
    return (dep["api"] * POOL_API + dep["workers"] * POOL_WORKER + dep["relay"] * POOL_RELAY
            + dep["scheduler"] * POOL_SCHEDULER)


def lambda_path(inputs: Inputs, jobs_per_s: float, dep: Deployment) -> dict[str, Any]:
    """Submits through Lambda instead of API processes. One invocation at a time per container,
    so concurrency = rate x call time (Little's law), with the same headroom; each container holds
    its pool for its life. Without a proxy: containers x pool + the servers' pools must fit
    max_connections. With RDS Proxy: the database sees about one connection per transaction in
    flight (rate x transaction time), if sessions are not pinned."""
    call_s = inputs.lambda_call_ms / 1000.0
    concurrency = max(1, math.ceil(jobs_per_s * call_s / inputs.target_utilisation - 1e-9))
    others = server_connections({**dep, "api": 0})
    direct = concurrency * POOL_LAMBDA + others
    free = inputs.pg_max_connections - others
    max_direct_concurrency = max(0, free // POOL_LAMBDA)
    # RDS Proxy lends a database connection per transaction: busy connections = rate x the
    # submit's transaction time (Little's law), with the same headroom, never more than the
    # containers themselves
    busy = max(1, math.ceil(jobs_per_s * inputs.lambda_txn_ms / 1000.0
                            / inputs.target_utilisation - 1e-9))
    proxied = min(concurrency, busy) + others
    return {"call_ms": round(inputs.lambda_call_ms, 3), "txn_ms": inputs.lambda_txn_ms,
            "concurrency": concurrency,
            "fits_account_default": concurrency <= LAMBDA_ACCOUNT_CONCURRENCY,
            "connections_direct": direct,
            "fits_direct": direct <= inputs.pg_max_connections,
            "max_reserved_concurrency_direct": max_direct_concurrency,
            "connections_with_proxy": proxied,
            "account_default_connections_direct":
                LAMBDA_ACCOUNT_CONCURRENCY * POOL_LAMBDA + others}


def stateless_hosts(dep: Deployment, cores: int = HOST_CORES) -> int:
    """Hosts of ``cores`` cores for the API, worker, relay and scheduler processes."""
    return math.ceil((dep["api"] + dep["workers"] + dep["relay"] + dep["scheduler"]) / cores)


def run(inputs: Inputs) -> dict[str, Any]:
    t = inputs.target_utilisation
    today_dep, _ = minimal_deployment(inputs, inputs.today_jobs_per_s)
    scenarios: dict[str, Any] = {}
    for label, factor in LOADS.items():
        load = inputs.today_jobs_per_s * factor
        dep, problems = minimal_deployment(inputs, load)
        util_today_dep = utilisation(inputs, today_dep, load)
        util_dep = utilisation(inputs, dep, load)
        cap, neck = ceiling(inputs, dep)
        scenarios[label] = {
            "jobs_per_s": load,
            "on_today_deployment": {
                "utilisation": {k: round(v, 3) for k, v in util_today_dep.items()},
                "saturates_first": bottleneck(util_today_dep),
                "over_target": [k for k, v in util_today_dep.items() if v > t],
            },
            "minimal_deployment": dep,
            "utilisation": {k: round(v, 3) for k, v in util_dep.items()},
            "bottleneck": neck,
            "ceiling_jobs_per_s": round(cap),
            "problems": problems,
            "projection_only": [c.name for c in inputs.components
                                if not c.built and dep[c.name] > 1],
            "stateless_hosts_2_core": stateless_hosts(dep),
            "growth_from_today": grow(inputs, today_dep, load),
            "saturation_order": saturation_order(grow(inputs, today_dep, load)),
            "events": event_path(inputs, load),
            "lambda": lambda_path(inputs, load, dep),
        }
    return {
        "target_utilisation": t,
        "today_jobs_per_s": inputs.today_jobs_per_s,
        "components": [
            {**asdict(c), "us_per_job": round(c.us_per_job, 2),
             "jobs_per_s_per_unit_at_100": round(unit_capacity(c, 1.0)),
             "jobs_per_s_per_unit_at_target": round(unit_capacity(c, t))}
            for c in inputs.components],
        "kafka_events_per_s_per_consumer": round(inputs.kafka_events_per_s_per_consumer),
        # PostgreSQL storing bulk-submitted rows only (no claim, no completion): its write
        # ceiling per core, for a submit-heavy load (bulk imports, fan-outs)
        "pg_bulk_write_per_core": {
            "us_per_row": inputs.pg_bulk_us_per_row,
            "rows_per_s_at_100": round(1e6 / inputs.pg_bulk_us_per_row),
            "rows_per_s_at_target": round(t * 1e6 / inputs.pg_bulk_us_per_row)},
        "single_host_this_machine": single_host(inputs, 2),
        "today_deployment": today_dep,
        "scenarios": scenarios,
        "sources": dict(inputs.sources),
    }


def _plural(unit: str, n: int) -> str:
    if n == 1:
        return unit
    return unit + ("es" if unit.endswith("s") else "s")


def _deployment_text(dep: Deployment, inputs: Inputs) -> str:
    return ", ".join(f"{dep[c.name]} {c.name} {_plural(c.unit, dep[c.name])}"
                     for c in inputs.components)


def markdown(res: dict[str, Any], inputs: Inputs) -> str:
    t = res["target_utilisation"]
    lines = ["# capacity_model", "",
             f"Deterministic projection from measured CPU per job (bench/capacity_model.py). "
             f"Target utilisation {t:.0%} per component (queueing headroom). Today's load = "
             f"{res['today_jobs_per_s']:,.0f} jobs/s (submitted over HTTP, processed, 3 events "
             "each). Valkey shards beyond one are a projection: Redis Cluster is not built yet.",
             "", "## Per unit", "",
             "| component | unit | CPU µs/job | jobs/s per unit at 100% | at target | source |",
             "|---|---|---:|---:|---:|---|"]
    for c in res["components"]:
        cap = "" if c["max_units"] is None else f" (max {c['max_units']})"
        lines.append(f"| {c['name']} | {c['unit']}{cap} | {c['us_per_job']:.1f} | "
                     f"{c['jobs_per_s_per_unit_at_100']:,} | "
                     f"{c['jobs_per_s_per_unit_at_target']:,} | {c['source']} |")
    h = res["single_host_this_machine"]
    w = res["pg_bulk_write_per_core"]
    lines += ["", f"PostgreSQL storing bulk-submitted rows only (pg_ceiling.json, schema as "
              f"shipped): {w['us_per_row']} µs per row → {w['rows_per_s_at_100']:,} rows/s per "
              f"core at 100%, {w['rows_per_s_at_target']:,} at {t:.0%}."]
    lines += ["", f"Everything on this 2-core machine: {h['total_us_per_job']} µs per job → "
              f"{h['ceiling_jobs_per_s_at_100']:,} jobs/s at 100%, "
              f"{h['ceiling_jobs_per_s_at_target']:,} at {t:.0%}.", "",
              "## Today, 10x, 100x", "",
              "| load | jobs/s | saturates first on today's deployment (utilisation) | "
              "minimal deployment | bottleneck there | ceiling jobs/s | stateless 2-core hosts |"
              " problems |",
              "|---|---:|---|---|---|---:|---:|---|"]
    for label, s in res["scenarios"].items():
        o = s["on_today_deployment"]
        first = o["saturates_first"]
        probs = "; ".join(s["problems"] + [f"{n}: projection (not built)"
                                           for n in s["projection_only"]]) or "none"
        lines.append(f"| {label} | {s['jobs_per_s']:,.0f} | {first} "
                     f"({o['utilisation'][first]:.0%}) | "
                     f"{_deployment_text(s['minimal_deployment'], inputs)} | {s['bottleneck']} "
                     f"({s['utilisation'][s['bottleneck']]:.0%}) | {s['ceiling_jobs_per_s']:,} |"
                     f" {s['stateless_hosts_2_core']} | {probs} |")
    lines += ["", "## Growing today's deployment", "",
              "One unit added to the bottleneck at a time until the load fits; each component "
              "the first time it binds, and the units the path adds to it:", ""]
    for label, s in res["scenarios"].items():
        order = s["saturation_order"]
        if not order:
            lines.append(f"- {label}: fits today's deployment.")
            continue
        parts = []
        for o in order:
            unit = inputs.component(o["bottleneck"]).unit
            text = f"{o['bottleneck']} binds at {o['binds_at_jobs_per_s']:,}/s"
            if o["units_added"]:
                text += f" (+{o['units_added']} {_plural(unit, o['units_added'])})"
            if o["stuck"]:
                text += ", capped: cannot add more"
            parts.append(text)
        lines.append(f"- {label}: " + "; ".join(parts) + ".")
    lines += ["", "## Event path (Kafka) and Lambda path", "",
              f"Kafka: one consumer measured at {res['kafka_events_per_s_per_consumer']:,} "
              f"events/s (events.json); {inputs.kafka_partitions_today} partitions per topic "
              "today.", "",
              "| load | events/s | consumers per group (= min partitions per topic) | fits 3 "
              "partitions | relay busy | Lambda concurrency | connections direct (fits "
              f"{inputs.pg_max_connections}) | with RDS Proxy | max reserved concurrency, "
              "direct |",
              "|---|---:|---:|---|---:|---:|---|---:|---:|"]
    for label, s in res["scenarios"].items():
        e, lam = s["events"], s["lambda"]
        lines.append(f"| {label} | {e['events_per_s']:,} | {e['consumers_per_group']} | "
                     f"{'yes' if e['fits_today_partitions'] else 'no'} | "
                     f"{e['relay_utilisation']:.0%} | {lam['concurrency']} | "
                     f"{lam['connections_direct']} ({'yes' if lam['fits_direct'] else 'no'}) | "
                     f"{lam['connections_with_proxy']} | "
                     f"{lam['max_reserved_concurrency_direct']} |")
    lines += ["", f"Lambda call time {res['scenarios']['today']['lambda']['call_ms']} ms "
              f"({inputs.lambda_call_source}). At the account default of "
              f"{LAMBDA_ACCOUNT_CONCURRENCY:,} containers x {POOL_LAMBDA} connections, direct "
              f"connections would be {res['scenarios']['today']['lambda']['account_default_connections_direct']:,}.",
              "", "Sources: " + "; ".join(f"{v}" for v in res["sources"].values()) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", type=Path, default=RESULTS, help="where the inputs are read")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--handler-us", type=float, default=0.0,
                   help="your handler's CPU µs per job, added to the workers' cost")
    p.add_argument("--lambda-call-ms", type=float, default=None,
                   help="one Lambda submit's duration (default: the in-process sequential "
                        "submit measured here; yours adds the network round trips)")
    args = p.parse_args()
    inputs = load_inputs(args.results, handler_us=args.handler_us)
    if args.lambda_call_ms is not None:
        inputs = replace(inputs, lambda_call_ms=args.lambda_call_ms,
                         lambda_call_source="--lambda-call-ms")
    res = run(inputs)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "capacity_model.json").write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    (args.out / "capacity_model.md").write_text(markdown(res, inputs))
    print(markdown(res, inputs))


if __name__ == "__main__":
    main()
