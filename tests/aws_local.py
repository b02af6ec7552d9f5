"""A real moto server subprocess for tests of the AWS pieces (S3, SSM, CloudFormation, Events).

Not a mock of our code: moto is the local stand-in for AWS that ``make deploy-local`` also uses.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Moto:
    port: int

    @property
    def endpoint(self) -> str:
        # localhost, not 127.0.0.1: deploys address S3 buckets by host name
        return f"http://localhost:{self.port}"

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def moto_server(log_dir: Path) -> Iterator[Moto]:
    port = free_port()
    moto_bin = Path(sys.executable).parent / "moto_server"
    with open(log_dir / "moto.log", "wb") as log:
        proc = subprocess.Popen([str(moto_bin), "-H", "127.0.0.1", "-p", str(port)],
                                stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **CREDENTIALS})
    try:
        m = Moto(port)
        deadline = time.monotonic() + 30
        while not _answers(f"{m.endpoint}/moto-api/"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto server did not start: {(log_dir / 'moto.log').read_text()}")
            time.sleep(0.05)  # waiting for a child process to listen; no event to wait on
        yield m
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a starved server may not get to its exit in time
            proc.kill()
            proc.wait()
