"""A local stand-in for API Gateway's REST proxy integration: real HTTP in, a proxy event to the handler,
the handler's response back out. The Extend simulator delivers signed webhooks to it like to the real API.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from base64 import b64decode, b64encode
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.lambda_runtime import LambdaContext, invoke_function

STAGE = "prod"
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's request size limit
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def proxy_event(
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    base64: bool = False,
    query: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The event a REST API proxy integration sends to Lambda for one request."""
    query = query or {}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": dict(headers),
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "requestId": uuid.uuid4().hex,
            "requestTimeEpoch": int(time.time() * 1000),
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "127.0.0.1"},
            "accountId": "123456789012",
            "apiId": "local",
        },
        "body": b64encode(body).decode("ascii") if base64 else body.decode("utf-8"),
        "isBase64Encoded": base64,
    }


class ApiGatewayServer:
    """Serves one Lambda handler on loopback; ``url`` is the stage's invoke URL."""

    def __init__(self, handler: Handler, port: int = 0, *, function_name: str = "batchdrop-webhook") -> None:
        self.handler = handler
        self.function_name = function_name
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _make_request_handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.answers: Counter[int] = Counter()  # status codes answered (API Gateway's 4XXError/5XXError)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ApiGatewayServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="apigw", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ApiGatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def invoke(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict, bytes]:
        """(status, headers, body) for one request, as API Gateway would answer it."""
        parts = urlsplit(raw_path)
        # Like a REST API with binary media types: bodies that are not text arrive base64-encoded.
        try:
            body.decode("utf-8")
            binary = False
        except UnicodeDecodeError:
            binary = True
        event = proxy_event(method, parts.path, headers, body, base64=binary, query=parse_qs(parts.query))
        try:
            context = LambdaContext(self.function_name, timeout_seconds=10)
            response = invoke_function(self.function_name, self.handler, event, context)
        except Exception:  # noqa: BLE001 - an unhandled Lambda error is a 502 at API Gateway
            return 502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}'
        payload = response.get("body") or ""
        data = b64decode(payload) if response.get("isBase64Encoded") else payload.encode("utf-8")
        headers_out = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers_out[name] = ", ".join(values)
        return int(response.get("statusCode", 200)), headers_out, data


def _make_request_handler(gateway: ApiGatewayServer) -> type[BaseHTTPRequestHandler]:
    class _RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # request lines would include paths; the handler logs what matters

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_PAYLOAD_BYTES:
                self._reply(
                    413, {"Content-Type": "application/json"}, json.dumps({"message": "too large"}).encode()
                )
                self.close_connection = True
                return
            body = self.rfile.read(length)
            headers = {name: value for name, value in self.headers.items()}
            status, headers_out, data = gateway.invoke(self.command, self.path, headers, body)
            gateway.answers[status] += 1
            try:
                self._reply(status, headers_out, data)
            except (BrokenPipeError, ConnectionResetError):
                # The caller gave up waiting (Extend stops after 30 s); it will retry the delivery.
                self.close_connection = True

        def _reply(self, status: int, headers: dict[str, str], data: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    return _RequestHandler
