"""Unit tests for the demo handlers, called directly (no database, queue or worker)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage, Message
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from PIL import Image, ImageChops

import jobline
from jobline import JobContext, JobError, Retry, Unrecoverable
from jobline.demo import (
    SEED_PAYLOADS,
    flaky,
    generate_report,
    noop,
    process_image,
    send_welcome_email,
    sleep,
)
from jobline.demo.images import make_test_pattern
from jobline.demo.reports import sample_rows
from jobline.worker.registry import default_registry

REPO_ROOT = Path(jobline.__file__).resolve().parent.parent


def make_ctx(attempt: int = 1, job_type: str = "test", queue: str = "default") -> JobContext:
    return JobContext(id=uuid.uuid4(), queue=queue, job_type=job_type, attempt=attempt,
                      max_attempts=5, worker_id="test-worker", execution=attempt)


@pytest.fixture(autouse=True)
def jobline_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("JOBLINE_HOME", str(home))
    monkeypatch.delenv("JOBLINE_SMTP_URL", raising=False)
    monkeypatch.delenv("JOBLINE_MAIL_FROM", raising=False)
    return home


def path_of(file_url: str) -> Path:
    parts = urlsplit(file_url)
    assert parts.scheme == "file"
    return Path(url2pathname(parts.path))


def assert_invalid(exc_info: pytest.ExceptionInfo[Unrecoverable]) -> None:
    assert exc_info.value.error_type == "validation_error"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- registration ------------------------------------------------------------------------------


def test_handlers_registered_with_expected_queues_and_limits() -> None:
    expected = {
        "demo.noop": ("default", None, None),
        "demo.sleep": ("default", None, None),
        "demo.flaky": ("default", None, None),
        "demo.crash": ("default", None, None),
        "send_welcome_email": ("email", 3, 30_000),
        "process_image": ("image-processing", None, 60_000),
        "generate_report": ("reports", None, 300_000),
    }
    specs = {name: default_registry.get(name) for name in expected}
    for name, (queue, max_attempts, timeout_ms) in expected.items():
        spec = specs[name]
        assert spec is not None, name
        assert (spec.queue, spec.max_attempts, spec.timeout_ms) == (queue, max_attempts, timeout_ms)
        # CPU/blocking handlers must be sync so the worker runs them off the event loop.
        assert spec.is_async == (name in {"demo.noop", "demo.sleep", "demo.flaky"}), name
    flaky_spec = specs["demo.flaky"]
    assert flaky_spec is not None and flaky_spec.wants_context
    assert set(SEED_PAYLOADS) == set(expected)


# --- noop / sleep ------------------------------------------------------------------------------


async def test_noop() -> None:
    assert await noop({}) == {"ok": True}


async def test_sleep_waits_requested_time() -> None:
    start = time.monotonic()
    assert await sleep({"ms": 30}) == {"sleptMs": 30}
    assert time.monotonic() - start >= 0.029
    assert await sleep({"ms": 0}) == {"sleptMs": 0}


@pytest.mark.parametrize("payload", [
    {}, {"ms": -1}, {"ms": 3_600_001}, {"ms": "10"}, {"ms": 1.5}, {"ms": True}, {"ms": None},
])
async def test_sleep_rejects_invalid_ms(payload: dict[str, Any]) -> None:
    with pytest.raises(Unrecoverable) as exc_info:
        await sleep(payload)
    assert_invalid(exc_info)


async def test_sleep_upper_bound_is_accepted_but_cancellable() -> None:
    task = asyncio.ensure_future(sleep({"ms": 3_600_000}))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- flaky -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fail_with", ["timeout", "connection_refused", "validation_error"])
async def test_flaky_fails_exactly_fail_times(fail_with: str) -> None:
    payload = {"failTimes": 3, "failWith": fail_with}
    failures = 0
    result: dict[str, Any] | None = None
    for attempt in range(1, 10):
        try:
            result = await flaky(payload, make_ctx(attempt))
            break
        except JobError as exc:
            assert exc.error_type == fail_with
            failures += 1
    assert failures == 3
    assert result == {"attempt": 4}


async def test_flaky_rate_limited_raises_non_burning_retry() -> None:
    payload = {"failTimes": 2, "failWith": "rate_limited"}
    for attempt in (1, 2):
        with pytest.raises(Retry) as exc_info:
            await flaky(payload, make_ctx(attempt))
        assert exc_info.value.burn_attempt is False
        assert exc_info.value.error_type == "rate_limited"
        assert exc_info.value.after == pytest.approx(0.05)
    assert await flaky(payload, make_ctx(3)) == {"attempt": 3}


async def test_flaky_zero_fail_times_succeeds_first_attempt() -> None:
    assert await flaky({"failTimes": 0, "failWith": "timeout"}, make_ctx(1)) == {"attempt": 1}


@pytest.mark.parametrize("payload", [
    {"failTimes": 1, "failWith": "boom"}, {"failTimes": -1}, {"failTimes": "2"},
])
async def test_flaky_rejects_invalid_payload(payload: dict[str, Any]) -> None:
    with pytest.raises(Unrecoverable) as exc_info:
        await flaky(payload, make_ctx(1))
    assert_invalid(exc_info)


# --- crash -------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["direct", "pool_thread"])
def test_crash_kills_whole_process_with_sigkill(how: str) -> None:
    call = "crash({})" if how == "direct" else (
        # The worker runs sync handlers in a thread pool: the kill must still take the process.
        "import concurrent.futures as cf; cf.ThreadPoolExecutor(1).submit(crash, {}).result()"
    )
    code = f"from jobline.demo import crash; {call}; print('survived', flush=True)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "survived" not in proc.stdout


# --- send_welcome_email ------------------------------------------------------------------------


def test_welcome_email_written_to_outbox_without_smtp(jobline_home: Path) -> None:
    ctx = make_ctx(job_type="send_welcome_email", queue="email")
    result = send_welcome_email(SEED_PAYLOADS["send_welcome_email"], ctx)
    assert result["delivery"] == "file"
    eml = path_of(result["path"])
    assert eml.parent == jobline_home.resolve() / "outbox"
    raw = eml.read_bytes()
    assert b"\r\n" in raw  # wire format
    msg = message_from_bytes(raw, policy=default_policy)
    assert isinstance(msg, EmailMessage)
    assert msg["To"] == "user@example.com"
    assert msg["Subject"] == "Welcome!"
    assert msg["Message-ID"] == result["emailId"] == f"<welcome.{ctx.id}@jobline.local>"
    assert msg["X-Jobline-User-Id"] == "123"
    assert msg["Date"] is not None
    body = msg.get_body(("plain",))
    assert body is not None and body.get_content().strip() == "Thanks for signing up!"
    assert result["sentAt"].endswith("+00:00")


def test_welcome_email_retry_reuses_message_id_and_file() -> None:
    ctx = make_ctx()
    first = send_welcome_email({"email": "a@example.com"}, ctx)
    ctx.attempt = 2
    second = send_welcome_email({"email": "a@example.com"}, ctx)
    assert first["emailId"] == second["emailId"]
    assert first["path"] == second["path"]
    assert len(list(path_of(first["path"]).parent.iterdir())) == 1


class _Collector:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[_Collector, int]]:
    collector = _Collector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield collector, port
    finally:
        controller.stop()


def test_welcome_email_delivered_over_smtp(smtp_server: tuple[_Collector, int],
                                           monkeypatch: pytest.MonkeyPatch,
                                           jobline_home: Path) -> None:
    collector, port = smtp_server
    monkeypatch.setenv("JOBLINE_SMTP_URL", f"smtp://127.0.0.1:{port}")
    result = send_welcome_email({"userId": 7, "email": "new.user@example.org"}, make_ctx())
    assert result["delivery"] == "smtp"
    assert len(collector.envelopes) == 1
    envelope = collector.envelopes[0]
    assert envelope.rcpt_tos == ["new.user@example.org"]
    assert envelope.mail_from == "no-reply@jobline.local"
    assert isinstance(envelope.content, bytes)
    msg: Message = message_from_bytes(envelope.content, policy=default_policy)
    assert msg["To"] == "new.user@example.org"
    assert msg["Subject"] == "Welcome!"
    assert msg["Message-ID"] == result["emailId"]
    assert not (jobline_home / "outbox").exists()


def test_welcome_email_connection_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # A port that was just free: nothing listens, so the connect is refused.
    monkeypatch.setenv("JOBLINE_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
    with pytest.raises(JobError) as exc_info:
        send_welcome_email({"email": "user@example.com"}, make_ctx())
    assert exc_info.value.error_type == "connection_refused"


def test_welcome_email_bad_smtp_url_is_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBLINE_SMTP_URL", "http://127.0.0.1:25")
    with pytest.raises(Unrecoverable) as exc_info:
        send_welcome_email({"email": "user@example.com"}, make_ctx())
    assert exc_info.value.error_type == "config_error"


@pytest.mark.parametrize("payload", [
    {},
    {"email": "not-an-email"},
    {"email": "user@localhost"},
    {"email": "a..b@example.com"},
    {"email": "user@example.com\r\nBcc: victim@example.com"},
    {"email": 123},
    {"email": "user@example.com", "userId": {"id": 1}},
    {"email": "user@example.com", "userId": True},
])
def test_welcome_email_rejects_invalid_input(payload: dict[str, Any], jobline_home: Path) -> None:
    with pytest.raises(Unrecoverable) as exc_info:
        send_welcome_email(payload, make_ctx())
    assert_invalid(exc_info)
    assert not (jobline_home / "outbox").exists()


# --- process_image -----------------------------------------------------------------------------


def open_output(result: dict[str, Any], jobline_home: Path) -> Image.Image:
    path = path_of(result["processedUrl"])
    assert path.parent == jobline_home.resolve() / "images"
    assert path.stat().st_size == result["bytes"]
    img = Image.open(path)
    img.load()
    return img


def test_image_resize_and_grayscale(jobline_home: Path) -> None:
    ctx = make_ctx()
    result = process_image({"imageUrl": "generate:400x300", "operations": [
        {"op": "resize", "width": 200, "height": 100}, {"op": "grayscale"},
    ]}, ctx)
    assert path_of(result["processedUrl"]).name == f"{ctx.id}.png"
    with open_output(result, jobline_home) as img:
        assert img.format == "PNG"
        assert img.size == (200, 100) == (result["width"], result["height"])
        assert img.mode == "L"


def test_image_rotate_crop_thumbnail_jpeg(jobline_home: Path) -> None:
    result = process_image({"imageUrl": "generate:400x300", "operations": [
        {"op": "rotate", "degrees": 90},       # -> 300x400
        {"op": "crop", "box": [0, 0, 300, 200]},  # -> 300x200
        {"op": "thumbnail", "size": 150},      # -> 150x100
        {"op": "format", "format": "jpeg"},
    ]})
    assert result["format"] == "jpeg"
    assert result["processedUrl"].endswith(".jpg")
    with open_output(result, jobline_home) as img:
        assert img.format == "JPEG"
        assert img.size == (150, 100)


def test_image_rotate_is_clockwise(jobline_home: Path) -> None:
    src = Image.new("RGB", (2, 1), "black")
    src.putpixel((0, 0), (255, 0, 0))  # red at the left
    path = jobline_home / "src.png"
    path.parent.mkdir(parents=True)
    src.save(path)
    result = process_image({"imageUrl": str(path), "operations": [{"op": "rotate", "degrees": 90}]})
    with open_output(result, jobline_home) as img:
        assert img.size == (1, 2)
        assert img.convert("RGB").getpixel((0, 0)) == (255, 0, 0)  # left edge went to the top


def test_image_blur_changes_pixels_but_not_size(jobline_home: Path) -> None:
    result = process_image({"imageUrl": "generate:128x128",
                            "operations": [{"op": "blur", "radius": 3}]})
    with open_output(result, jobline_home) as img:
        assert img.size == (128, 128)
        assert ImageChops.difference(img.convert("RGB"), make_test_pattern(128, 128)).getbbox()


def test_image_from_file_url_keeps_source_format(jobline_home: Path) -> None:
    src = jobline_home / "in" / "photo.webp"
    src.parent.mkdir(parents=True)
    Image.new("RGBA", (64, 48), (10, 20, 30, 128)).save(src)
    result = process_image({"imageUrl": src.as_uri(),
                            "operations": [{"op": "resize", "width": 32}]})
    assert result["format"] == "webp"
    with open_output(result, jobline_home) as img:
        assert img.format == "WEBP"
        assert img.size == (32, 24)  # aspect ratio kept when only width is given


def test_image_from_http(jobline_home: Path) -> None:
    buf = io.BytesIO()
    make_test_pattern(90, 60).save(buf, format="PNG")
    png = buf.getvalue()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/cat.png":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        result = process_image({"imageUrl": f"{base}/cat.png",
                                "operations": [{"op": "thumbnail", "size": 45}]})
        with open_output(result, jobline_home) as img:
            assert img.size == (45, 30)
        with pytest.raises(Unrecoverable) as exc_info:
            process_image({"imageUrl": f"{base}/missing.png"})
        assert_invalid(exc_info)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_image_http_connection_refused() -> None:
    with pytest.raises(JobError) as exc_info:
        process_image({"imageUrl": f"http://127.0.0.1:{free_port()}/x.png"})
    assert exc_info.value.error_type == "connection_refused"


def test_image_default_is_generated_pattern(jobline_home: Path) -> None:
    result = process_image({})
    with open_output(result, jobline_home) as img:
        assert img.size == (512, 512)
        assert img.mode == "RGB"


@pytest.mark.parametrize("payload", [
    {"operations": [{"op": "sharpen"}]},
    {"operations": [{"op": "resize"}]},
    {"operations": [{"op": "resize", "width": 0, "height": 10}]},
    {"operations": [{"op": "rotate", "degrees": "90"}]},
    {"operations": [{"op": "blur", "radius": -1}]},
    {"operations": [{"op": "crop", "box": [0, 0, 10]}]},
    {"operations": [{"op": "format", "format": "gif"}]},
    {"operations": "grayscale"},
    {"imageUrl": "generate:10x300000"},
    {"imageUrl": "ftp://example.com/a.png"},
    {"imageUrl": "/definitely/not/here.png"},
])
def test_image_rejects_invalid_input(payload: dict[str, Any], jobline_home: Path) -> None:
    with pytest.raises(Unrecoverable) as exc_info:
        process_image({"imageUrl": "generate:50x50", **payload})
    assert_invalid(exc_info)
    assert not (jobline_home / "images").exists()


def test_image_crop_outside_image_is_invalid() -> None:
    with pytest.raises(Unrecoverable) as exc_info:
        process_image({"imageUrl": "generate:100x100",
                       "operations": [{"op": "crop", "box": [0, 0, 101, 50]}]})
    assert_invalid(exc_info)


def test_image_non_image_file_is_invalid(jobline_home: Path) -> None:
    bogus = jobline_home / "notes.png"
    bogus.parent.mkdir(parents=True)
    bogus.write_text("not really a png")
    with pytest.raises(Unrecoverable) as exc_info:
        process_image({"imageUrl": bogus.as_uri()})
    assert_invalid(exc_info)


# --- generate_report ---------------------------------------------------------------------------


def test_report_csv_stats_and_file(jobline_home: Path) -> None:
    payload = {
        "title": "Q1",
        "columns": ["name", "qty", "price", "note"],
        "rows": [["a", 2, 1.5, None], ["b", 4, 2.25, "x"], ["c", None, 0.25, "y"]],
        "format": "csv",
    }
    result = generate_report(payload, make_ctx())
    assert result["rows"] == 3
    summary = result["summary"]
    assert summary["count"] == 3
    # Text columns get no numeric stats; nulls are skipped, not counted as zero.
    assert set(summary["columns"]) == {"qty", "price"}
    assert summary["columns"]["qty"] == {"count": 2, "sum": 6, "mean": 3.0, "min": 2, "max": 4}
    price = summary["columns"]["price"]
    assert (price["count"], price["min"], price["max"]) == (3, 0.25, 2.25)
    assert price["sum"] == pytest.approx(4.0)
    assert price["mean"] == pytest.approx(4.0 / 3)

    path = path_of(result["reportUrl"])
    assert path.parent == jobline_home.resolve() / "reports" and path.suffix == ".csv"
    parsed = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert parsed[0] == payload["columns"]
    assert parsed[1:] == [["a", "2", "1.5", ""], ["b", "4", "2.25", "x"], ["c", "", "0.25", "y"]]


def test_report_json_from_object_rows() -> None:
    rows = [{"city": "Oslo", "temp": -3}, {"city": "Rome", "temp": 15, "rain": 1.5}]
    result = generate_report({"title": "Weather", "rows": rows, "format": "json"})
    doc = json.loads(path_of(result["reportUrl"]).read_text())
    assert doc["title"] == "Weather"
    assert doc["columns"] == ["city", "temp", "rain"]
    assert doc["rows"] == [["Oslo", -3, None], ["Rome", 15, 1.5]]
    assert doc["summary"] == result["summary"]
    assert result["summary"]["columns"]["temp"] == {"count": 2, "sum": 12, "mean": 6.0,
                                                    "min": -3, "max": 15}


def test_report_html_escapes_content() -> None:
    result = generate_report({"title": "<script>alert(1)</script>", "columns": ["v"],
                              "rows": [["<b>bold</b>"], [1]], "format": "html"})
    text = path_of(result["reportUrl"]).read_text()
    assert "<script>" not in text and "<b>bold" not in text
    assert "&lt;script&gt;" in text and "&lt;b&gt;bold&lt;/b&gt;" in text
    assert result["summary"]["columns"] == {}  # mixed text/number column is not numeric


def test_report_sample_is_deterministic_and_stats_match_file() -> None:
    first = generate_report({"kind": "sample", "rows": 1000, "format": "json"})
    second = generate_report({"kind": "sample", "rows": 1000, "format": "json"})
    assert first["rows"] == 1000
    assert first["summary"] == second["summary"]
    assert first["reportUrl"] != second["reportUrl"]
    doc = json.loads(path_of(first["reportUrl"]).read_text())
    assert doc["rows"] == sample_rows(1000) == json.loads(path_of(second["reportUrl"]).read_text())["rows"]
    # Recompute independently from the written file.
    cols = doc["columns"]
    stats = first["summary"]["columns"]
    assert set(stats) == {"id", "units", "unitPrice", "revenue"}
    for name in stats:
        values = [row[cols.index(name)] for row in doc["rows"]]
        assert stats[name]["count"] == len(values) == 1000
        assert stats[name]["sum"] == pytest.approx(sum(values))
        assert stats[name]["mean"] == pytest.approx(sum(values) / 1000)
        assert (stats[name]["min"], stats[name]["max"]) == (min(values), max(values))
    assert stats["id"] == {"count": 1000, "sum": 500_500, "mean": 500.5, "min": 1, "max": 1000}


@pytest.mark.parametrize("payload", [
    {"rows": [[1, 2]], "columns": ["a"]},
    {"rows": [[1]], "columns": ["a"], "format": "xlsx"},
    {"rows": [[{"nested": 1}]], "columns": ["a"]},
    {"rows": [[1, 2]], "columns": ["a", "a"]},
    {"rows": [{"a": 1, "b": 2}], "columns": ["a"]},
    {"rows": "1,2,3"},
    {"kind": "sample", "rows": -1},
    {"kind": "sample", "rows": 10_000_000},
    {"kind": "nonsense"},
    {"rows": [[1]], "columns": ["a"], "title": 5},
])
def test_report_rejects_invalid_input(payload: dict[str, Any], jobline_home: Path) -> None:
    with pytest.raises(Unrecoverable) as exc_info:
        generate_report(payload)
    assert_invalid(exc_info)
    assert not (jobline_home / "reports").exists()
