"""Demo job handlers, registered on the default registry when this package is imported.

Run a worker with ``jobline.demo`` imported to serve them. ``SEED_PAYLOADS`` holds a working
example payload per job type for seeding dashboards and smoke tests.
"""

from __future__ import annotations

from typing import Any

from jobline.demo.basic import crash, flaky, noop, sleep
from jobline.demo.images import process_image
from jobline.demo.mail import send_welcome_email
from jobline.demo.reports import generate_report

SEED_PAYLOADS: dict[str, dict[str, Any]] = {
    "demo.noop": {},
    "demo.sleep": {"ms": 100},
    "demo.flaky": {"failTimes": 2, "failWith": "timeout"},
    "demo.crash": {},
    "send_welcome_email": {"userId": 123, "email": "user@example.com"},
    "process_image": {
        "imageUrl": "generate:800x600",
        "operations": [
            {"op": "resize", "width": 400, "height": 300},
            {"op": "grayscale"},
            {"op": "format", "format": "png"},
        ],
    },
    "generate_report": {"kind": "sample", "rows": 1000, "format": "csv"},
}

__all__ = [
    "SEED_PAYLOADS",
    "crash",
    "flaky",
    "generate_report",
    "noop",
    "process_image",
    "send_welcome_email",
    "sleep",
]
