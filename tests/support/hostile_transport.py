"""The hostile registry with transport faults: trickled answers, slow readers, echoes, TLS.

:class:`TransportRegistry` is a :class:`~tests.support.hostile_registry.HostileRegistry` whose
rules may also answer with

- :class:`Trickle`: the status line and headers, then the body ``block`` bytes every
  ``interval`` seconds (default: a byte every half second); ``headers_too`` trickles the
  status line and headers as well;
- :class:`SlowRead`: reads the request body ``block`` bytes every ``interval`` seconds before
  answering, like a registry behind a very slow link;
- :class:`EchoAuth`: 401 with ``challenge`` while a request has no Authorization header, then
  ``status`` with an OCI error whose message quotes the Authorization header it received (as
  some registries and proxies do);

and that serves HTTPS with a certificate from :func:`self_signed` when started with
``start(tls=server_context(...))``, counting the connections it accepted (``connections``).
Every slow loop is bounded: it ends when the client goes away, when its bytes run out, or when
the registry is stopped.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.hostile_registry import Answer, HostileRegistry, _Handler, error_body

# A name for 127.0.0.1 that ci-modelver does not treat as loopback, so it speaks TLS to it:
# "127.1" is the short form of 127.0.0.1 that the system resolver accepts.
TLS_HOST = "127.1"


@dataclass(frozen=True)
class Trickle(Answer):
    """An answer whose body (or everything) is sent ``block`` bytes every ``interval`` seconds."""

    interval: float = 0.5
    block: int = 1
    headers_too: bool = False


@dataclass(frozen=True)
class SlowRead(Answer):
    """Read the request body ``block`` bytes every ``interval`` seconds, then answer."""

    interval: float = 0.5
    block: int = 64 * 1024


@dataclass(frozen=True)
class EchoAuth(Answer):
    """401 with ``challenge`` until a request carries Authorization, then ``status`` quoting it.

    ``message`` may use ``{auth}`` (the whole header), ``{credential}`` (what follows the scheme)
    and ``{decoded}`` (a Basic credential decoded: ``user:password``).
    """

    challenge: str = 'Basic realm="registry"'
    message: str = "access denied for Authorization: {auth}"
    code: str = "DENIED"


class _TLSServer(ThreadingHTTPServer):
    """Counts every connection, then does the TLS handshake in the connection's own thread."""

    tls: ssl.SSLContext | None = None
    registry: TransportRegistry

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        with self.registry._lock:
            self.registry.connections += 1
        return sock, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:
            request.settimeout(10)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):  # the client refused our certificate
                return
        super().finish_request(request, client_address)


class _TransportHandler(_Handler):
    def _handle(self) -> None:
        registry: TransportRegistry = self.server.registry  # type: ignore[attr-defined]
        ruled = registry._ruled(self.command, self.path.split("?", 1)[0])
        if isinstance(ruled, SlowRead):
            self._note(registry)
            self._slow_read(registry, ruled)
        elif isinstance(ruled, Trickle):
            self._note(registry)
            self._drain()
            self._trickle(registry, ruled)
        elif isinstance(ruled, EchoAuth):
            self._note(registry)
            self._drain()
            self._echo(ruled)
        else:
            super()._handle()

    def _note(self, registry: TransportRegistry) -> None:
        with registry._lock:
            registry.requests.append((self.command, self.path))

    def _drain(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def _head(self, answer: Answer) -> bytes:
        reason = self.responses.get(answer.status, ("",))[0]
        headers = {"Content-Type": "application/json", **answer.headers}
        headers.setdefault("Content-Length", str(len(answer.body)))
        lines = [f"HTTP/1.1 {answer.status} {reason}", *(f"{k}: {v}" for k, v in headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send_all(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _slow_read(self, registry: TransportRegistry, answer: SlowRead) -> None:
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0 and not registry.stopped.is_set():
            try:
                chunk = self.rfile.read(min(answer.block, left))
            except OSError:
                chunk = b""
            if not chunk:  # the client gave up
                self.close_connection = True
                return
            left -= len(chunk)
            with registry._lock:
                registry.received += len(chunk)
            registry.stopped.wait(answer.interval)
        if left == 0:
            self._send_all(self._head(answer) + answer.body)

    def _trickle(self, registry: TransportRegistry, answer: Trickle) -> None:
        head = self._head(answer)
        body = answer.body if self.command != "HEAD" else b""
        slow = head + body if answer.headers_too else body
        self.close_connection = True
        try:
            if not answer.headers_too:
                self.wfile.write(head)
                self.wfile.flush()
            for start in range(0, len(slow), answer.block):
                if registry.stopped.wait(answer.interval):
                    return
                piece = slow[start : start + answer.block]
                self.wfile.write(piece)
                self.wfile.flush()
                with registry._lock:
                    registry.trickled += len(piece)
        except OSError:  # the client gave up and closed the connection: what the tests expect
            return

    def _echo(self, answer: EchoAuth) -> None:
        auth = self.headers.get("Authorization")
        if not auth:
            challenge = Answer(401, b"", {"WWW-Authenticate": answer.challenge})
            self._send_all(self._head(challenge))
            return
        credential = auth.split(" ", 1)[-1]
        try:
            decoded = base64.b64decode(credential, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        message = answer.message.format(auth=auth, credential=credential, decoded=decoded)
        reply = Answer(answer.status, error_body(answer.code, message), dict(answer.headers))
        self._send_all(self._head(reply) + reply.body)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle


class TransportRegistry(HostileRegistry):
    """The hostile registry with :class:`Trickle`, :class:`SlowRead` and :class:`EchoAuth`
    rules, over HTTP or (``start(tls=...)``) HTTPS."""

    def __init__(self) -> None:
        super().__init__()
        self.stopped = threading.Event()
        self.trickled = 0  # bytes sent by trickling rules
        self.received = 0  # request body bytes read by slow readers
        self.connections = 0  # connections accepted
        self.tls = False

    def start(self, tls: ssl.SSLContext | None = None) -> TransportRegistry:
        server = _TLSServer(("127.0.0.1", 0), _TransportHandler)
        server.daemon_threads = True
        server.registry = self
        server.tls = tls
        self.tls = tls is not None
        self._server = server
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        super().stop()

    @property
    def host(self) -> str:
        assert self._server is not None, "start() the registry first"
        name = TLS_HOST if self.tls else "127.0.0.1"
        return f"{name}:{self._server.server_address[1]}"

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the registry first"
        return int(self._server.server_address[1])


def self_signed(
    folder: Path, names: tuple[str, ...] = (TLS_HOST, "127.0.0.1")
) -> tuple[Path, Path]:
    """A self-signed CA certificate for ``names`` (DNS names or IP addresses): (cert, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ci-modelver test registry")])
    alternatives: list[x509.GeneralName] = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "registry.crt", folder / "registry.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A TLS server context presenting ``cert``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def resolves_to_loopback(name: str = TLS_HOST) -> bool:
    """Whether ``name`` resolves to 127.0.0.1 here (the TLS tests depend on it)."""
    try:
        infos = socket.getaddrinfo(name, 443, socket.AF_INET)
    except OSError:
        return False
    return any(info[4][0] == "127.0.0.1" for info in infos)
