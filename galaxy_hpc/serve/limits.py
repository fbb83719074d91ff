"""The server's guards, in front of every route: an optional token, request bodies no
larger than the config allows, and rate limits per client address, per session, overall
and for /infer, counted by the `limits` library (moving windows in memory: one server
process owns its counters). Over a limit: 429 with Retry-After, one line of JSON.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from typing import Any

from galaxy_hpc.serve.config import ServeConfig

SESSION_COOKIE = "ghpc_session"
TOKEN_COOKIE = "ghpc_token"
OPEN_PATHS = ("/health",)  # no token, no rate limit: a liveness probe


class RateLimits:
    def __init__(self, cfg: ServeConfig) -> None:
        from limits import parse
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        rate = cfg.rate
        self.per_client = parse(rate.per_client)
        self.per_session = parse(rate.per_session)
        self.overall = parse(rate.overall)
        self.infer = parse(rate.infer_per_client)

    def check(self, path: str, client: str, session: str | None) -> tuple[str, int] | None:
        """None when the request may go on, else (which limit, seconds until it may)."""
        checks = [(self.overall, ("overall",), "overall"),
                  (self.per_client, ("client", client), "per client")]
        if session:
            checks.append((self.per_session, ("session", session), "per session"))
        if path == "/infer":
            checks.append((self.infer, ("infer", client), "/infer per client"))
        for limit, keys, name in checks:
            if not self.limiter.hit(limit, *keys):
                reset = self.limiter.get_window_stats(limit, *keys).reset_time
                return f"{limit} ({name})", max(1, math.ceil(reset - time.time()))
        return None


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status, headers=headers)


def install_guards(app: Any, cfg: ServeConfig) -> None:
    """Add the token, rate-limit and body-size guards to a FastAPI app (outermost last)."""
    limits = RateLimits(cfg)
    token = cfg.token

    @app.middleware("http")
    async def guard(request: Any, call_next: Any) -> Any:
        path = request.url.path
        if path in OPEN_PATHS:
            return await call_next(request)
        new_cookies: dict[str, str] = {}
        if token:
            given = _token_of(request)
            if given is None or not secrets.compare_digest(given, token):
                return json_error(401, "a token is needed: Authorization: Bearer TOKEN, or "
                                  "?token=TOKEN once in the browser")
            if request.query_params.get("token"):
                new_cookies[TOKEN_COOKIE] = token
        session = request.cookies.get(SESSION_COOKIE)
        if session is None and not path.startswith(("/api", "/infer", "/metrics")):
            session = new_cookies[SESSION_COOKIE] = secrets.token_urlsafe(16)
        client = request.client.host if request.client else "unknown"
        over = limits.check(path, client, session)
        if over is not None:
            what, retry = over
            return json_error(429, f"rate limit exceeded: {what}; retry in {retry} s",
                              headers={"Retry-After": str(retry)})
        response = await call_next(request)
        for name, value in new_cookies.items():
            response.set_cookie(name, value, httponly=True, samesite="strict")
        return response

    app.add_middleware(BodyLimit, max_bytes=cfg.limits.max_body_bytes)


def _token_of(request: Any) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE)


class BodyLimit:
    """ASGI middleware: 413 for a body over `max_bytes`, whether its Content-Length says
    so or a chunked body grows past it (read before the route sees it)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_bytes
            except ValueError:
                await _send_error(send, 400, "Content-Length is not a number")
                return
            if too_big:
                await _send_error(send, 413, f"request body over {self.max_bytes} bytes")
                return
            await self.app(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                await _send_error(send, 413, f"request body over {self.max_bytes} bytes")
                return
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _send_error(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
