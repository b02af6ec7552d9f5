"""A TCP proxy a test can cut: the stores "go away" for the processes that reach them through it.

Modes, switchable at any time:
  * ``forward``: relay bytes both ways (the stores are reachable);
  * ``blackhole``: keep every connection open and accept new ones, but relay nothing (a host
    that vanished from the network: reads and connects hang until their own timeouts);
  * ``refuse``: close every connection and stop listening (a server that died: connection
    refused).

Threads, not asyncio: the test's event loop must not be able to stall the relay.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from typing import Literal

Mode = Literal["forward", "blackhole", "refuse"]


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode: Mode = "forward"
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()
        self.port = 0

    def start(self) -> int:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(128)
        self.port = s.getsockname()[1]
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()
        return self.port

    def set_mode(self, mode: Mode) -> None:
        with self._lock:
            self.mode = mode
            if mode == "refuse":
                if self._listener is not None:
                    with contextlib.suppress(OSError):
                        self._listener.shutdown(socket.SHUT_RDWR)
                    self._listener.close()
                    self._listener = None
                for c in self._conns:
                    with contextlib.suppress(OSError):
                        c.shutdown(socket.SHUT_RDWR)
                    c.close()
                self._conns.clear()

    def stop(self) -> None:
        self._stopped.set()
        self.set_mode("refuse")

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                if self.mode == "refuse":
                    client.close()
                    continue
                self._conns.append(client)
                upstream: socket.socket | None = None
                if self.mode == "forward":
                    try:
                        upstream = socket.create_connection(self.target, timeout=5)
                    except OSError:
                        client.close()
                        continue
                    self._conns.append(upstream)
            if upstream is not None:
                threading.Thread(target=self._relay, args=(client, upstream), daemon=True).start()

    def _relay(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self._stopped.is_set():
                if self.mode == "refuse":
                    return
                if self.mode == "blackhole":
                    # hold the connection, relay nothing (a period, not a wait for state)
                    time.sleep(0.2)
                    continue
                readable, _, _ = select.select([a, b], [], [], 0.2)
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    peers[s].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            if self.mode != "blackhole":
                for s in (a, b):
                    with contextlib.suppress(OSError):
                        s.close()
