"""Real local receivers for alert notifications: an SMTP server (aiosmtpd) and an HTTP server
(uvicorn + Starlette) recording Slack/webhook posts, with per-path scripted failures."""

from __future__ import annotations

import asyncio
import contextlib
import email
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobline.testing import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        #: AUTH attempts: the login accepted, or "refused"
        self.logins: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content)
        msg["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(msg)
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def smtp_server(*, starttls_auth: tuple[str, str] | None = None,
                cert_dir: Path | None = None) -> Any:
    """An SMTP server on 127.0.0.1 (thread); yields (port, mailbox). With ``starttls_auth``
    (user, password) it requires STARTTLS (a self-signed certificate made in ``cert_dir``) and
    then AUTH with those credentials."""
    box = _Mailbox()
    port = free_port()
    kw: dict[str, Any] = {}
    if starttls_auth is not None:
        assert cert_dir is not None
        user, password = starttls_auth

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                          auth_data: Any) -> AuthResult:
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login == user.encode()
                  and auth_data.password == password.encode())
            box.logins.append(auth_data.login.decode() if ok else "refused")
            # handled=False: aiosmtpd answers the refusal itself (535), as a real server does.
            # With its default (handled=True) it sends nothing, and the client sat out its
            # whole read timeout (15 s) on every wrong-password attempt.
            return AuthResult(success=ok, handled=False)

        kw = {"tls_context": _self_signed(cert_dir), "require_starttls": True,
              "auth_required": True, "auth_require_tls": True, "authenticator": authenticator}
    ctl = Controller(box, hostname="127.0.0.1", port=port, **kw)
    ctl.start()
    try:
        yield port, box
    finally:
        ctl.stop()


def _self_signed(d: Path) -> ssl.SSLContext:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    return ctx


@dataclass
class Posted:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class HttpReceiver:
    port: int
    posts: list[Posted] = field(default_factory=list)
    #: path -> statuses to answer, in order (then 200)
    fail: dict[str, list[int]] = field(default_factory=dict)
    #: path -> requests seen (failed ones included)
    seen: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Posted]:
        return [p for p in self.posts if p.path == path]


@contextlib.asynccontextmanager
async def http_receiver() -> AsyncIterator[HttpReceiver]:
    rec = HttpReceiver(free_port())

    async def hook(request: Request) -> Response:
        path = request.url.path
        rec.seen[path] = rec.seen.get(path, 0) + 1
        body = await request.body()
        script = rec.fail.get(path) or []
        if script:
            return Response(status_code=script.pop(0), content=b"scripted failure")
        rec.posts.append(Posted(path, {k.lower(): v for k, v in request.headers.items()}, body))
        return Response(b"ok")

    app = Starlette(routes=[Route("/{p:path}", hook, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=rec.port,
                                           log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return bool(server.started)

    await wait_until(started, message="the HTTP receiver listening")
    try:
        yield rec
    finally:
        server.should_exit = True
        await task
