"""A local fake of a Supabase project's JWKS endpoint, with real asymmetric signing keys.

:class:`SigningKey` is one ES256 (P-256) or RS256 (RSA 2048) key pair generated with
``cryptography``: it signs tokens with its ``kid`` in the header and gives its public half as a
JWK. :class:`FakeJwks` serves ``{"keys": [...]}`` at ``/auth/v1/.well-known/jwks.json``, as
Supabase does below ``SUPABASE_URL``; a test publishes keys (a rotation is publishing another
set), counts fetches, and can make the endpoint hang or fail. Start it with
``FakeJwks().start()``.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

JWKS_PATH = "/auth/v1/.well-known/jwks.json"


class SigningKey:
    """A project signing key: the private half signs, the public half goes in the JWKS."""

    def __init__(self, algorithm: str = "ES256", kid: str | None = None):
        self.algorithm = algorithm
        self.kid = kid or f"{algorithm.lower()}-{uuid.uuid4().hex[:8]}"
        if algorithm == "ES256":
            self.private_key = ec.generate_private_key(ec.SECP256R1())
            jwk = ECAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        elif algorithm == "RS256":
            self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        else:
            raise ValueError(f"no such test key algorithm: {algorithm}")
        #: As Supabase publishes it: kid, alg, use and the key's public parameters.
        self.jwk = {**jwk, "kid": self.kid, "alg": algorithm, "use": "sig"}

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict, *, kid: str | None = None, **headers) -> str:
        """A token of ``claims`` signed by this key, naming ``kid`` (default: its own)."""
        header = {"kid": self.kid if kid is None else kid, **headers}
        return jwt.encode(claims, self.private_key, algorithm=self.algorithm, headers=header)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that gave up on a hanging answer is no error of the fake's."""


class FakeJwks:
    """Serves the public halves of :attr:`keys`; records each fetch in :attr:`fetches`."""

    def __init__(self, *keys: SigningKey):
        self.keys: list[SigningKey] = list(keys)
        self.fetches = 0
        #: Hold every request unanswered until :meth:`stop` (an endpoint that hangs).
        self.hang = False
        #: Answer with this status and no key set (an endpoint that fails).
        self.fail_status: int | None = None
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-jwks", daemon=True
        )

    @property
    def base_url(self) -> str:
        """What ``SUPABASE_URL`` would be."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """The JWKS URL (``JWT_JWKS_URL``)."""
        return self.base_url + JWKS_PATH

    def publish(self, *keys: SigningKey) -> None:
        """Serve exactly these keys from now on (a rotation)."""
        self.keys = list(keys)

    def start(self) -> FakeJwks:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with fake._lock:
                    fake.fetches += 1
                if fake.hang:
                    fake._released.wait()
                    return
                if self.path != JWKS_PATH:
                    return self._answer(404, {"error": "not found"})
                if fake.fail_status is not None:
                    return self._answer(fake.fail_status, {"error": "unavailable"})
                self._answer(200, {"keys": [key.jwk for key in fake.keys]})

            def _answer(self, status: int, body: dict) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format, *args):
                pass

        return Handler
