"""Who may talk to the server: the Host header (against DNS rebinding), the Origin of state-changing requests
(against cross-site form posts) and an optional token (required when the server listens beyond loopback).

`Guard` is plain ASGI middleware, so it covers every route, mounted apps and websockets included.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import re
import socket
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlsplit

from recgen.errors import RecgenError
from recgen.serve.limits import header, reply

COOKIE = "recgen_token"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
WILDCARDS = {"0.0.0.0", "::", ""}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def host_name(netloc: str) -> str:
    """'Example.org:8000' -> 'example.org'; '[::1]:8000' -> '::1'."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1:netloc.find("]")] if "]" in netloc else netloc
    return (netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc).rstrip(".")


def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback address (a name that does not resolve is not)."""
    host = host_name(host)
    if host in LOOPBACK_NAMES:
        return True
    if host in WILDCARDS:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        addrs = {a[4][0] for a in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return False
    return bool(addrs) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs)


def allowed_hosts(bind: str, extra: list[str] = ()) -> set[str] | None:
    """The Host header values the server answers (None = any): loopback names, the bound address, and `extra`
    (`--allow-host`; '*' allows any). A wildcard bind adds this machine's name and its addresses."""
    if "*" in extra:
        return None
    hosts = LOOPBACK_NAMES | {host_name(h) for h in extra} | {host_name(bind)}
    if host_name(bind) in WILDCARDS:
        name = socket.gethostname()
        hosts |= {name.lower(), socket.getfqdn().lower()}
        try:
            hosts |= set(socket.gethostbyname_ex(name)[2])
        except OSError:
            pass
    return hosts - WILDCARDS


def check_token(token: str | None) -> None:
    """A token goes into a cookie and a header unquoted: printable, no separators, and not trivially short."""
    if token is not None and not re.fullmatch(r"[A-Za-z0-9._~+/=-]{8,}", token):
        raise RecgenError("--token / RECGEN_TOKEN: at least 8 characters among letters, digits and ._~+/=- "
                          "(or --token auto for a random one)")


def check_bind(host: str, token: str | None) -> None:
    """The server may listen beyond loopback only with a token."""
    check_token(token)
    if not token and not is_loopback(host):
        raise RecgenError(f"--host {host} is reachable beyond this machine: give --token (or set "
                          "RECGEN_TOKEN), or bind 127.0.0.1")


class Guard:
    """Host check (400), then Origin check on anything that can change state (403), then the token (401).

    The token is accepted as `Authorization: Bearer T`, as the `recgen_token` cookie, or as `?token=T`; the
    query form (a link to open in a browser) sets the cookie (HttpOnly, SameSite=Strict) so the page's own
    requests carry it, and is taken off the query before the app sees it."""

    def __init__(self, app, token: str | None = None, hosts: set[str] | None = None):
        self.app, self.token, self.hosts = app, token or None, hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        host = header(scope, b"host") or ""
        if self.hosts is not None and host_name(host) not in self.hosts:
            why = (f"host {host[:80]!r} is not served here (DNS rebinding?); start the server with "
                   "--allow-host NAME to allow it")
            return await self._deny(scope, send, 400, why)
        if scope["type"] == "websocket" or scope["method"] not in SAFE_METHODS:
            why = self._cross_site(scope, host)
            if why:
                return await self._deny(scope, send, 403, why)
        if self.token:
            query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            given = [v for k, v in query if k == "token"]
            if not any(self._matches(t) for t in given + self._credentials(scope)):
                return await self._deny(scope, send, 401, "a token is required: send 'Authorization: Bearer "
                                                          "TOKEN' or open the page once with ?token=TOKEN",
                                        {"www-authenticate": "Bearer"})
            if given:  # the other parameters kept byte for byte
                rest = b"&".join(p for p in scope["query_string"].split(b"&") if p.split(b"=")[0] != b"token")
                scope = {**scope, "query_string": rest}
                send = self._setting_cookie(send)
        await self.app(scope, receive, send)

    def _matches(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self.token.encode())

    @staticmethod
    def _credentials(scope) -> list[str]:
        out = []
        auth = header(scope, b"authorization") or ""
        if auth[:7].lower() == "bearer ":
            out.append(auth[7:].strip())
        cookie = SimpleCookie()
        with contextlib.suppress(CookieError):  # a malformed cookie header carries no token
            cookie.load(header(scope, b"cookie") or "")
        if COOKIE in cookie:
            out.append(cookie[COOKIE].value)
        return out

    @staticmethod
    def _cross_site(scope, host: str) -> str | None:
        """Why a request that can change state comes from another site, or None. Browsers send Origin with
        every cross-origin POST (forms included) and Sec-Fetch-Site when they can; clients such as curl send
        neither and are let through (the token, when set, still applies)."""
        origin = header(scope, b"origin")
        if origin is not None:
            o = urlsplit(origin.strip())
            port = {"http": 80, "https": 443}.get(o.scheme)
            netloc = o.netloc.lower().removesuffix(f":{port}")
            if origin.strip() == "null" or netloc != host.lower().removesuffix(f":{port}"):
                return f"cross-origin request from {origin[:80]!r} refused"
            return None
        site = header(scope, b"sec-fetch-site")
        if site in ("cross-site", "same-site"):
            return f"cross-site request refused (Sec-Fetch-Site: {site})"
        return None

    async def _deny(self, scope, send, status: int, detail: str, headers: dict[str, str] | None = None):
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})
        await reply(send, status, detail, headers, scope)

    def _setting_cookie(self, send):
        cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/".encode()

        async def wrapped(msg):
            if msg["type"] == "http.response.start":
                msg = {**msg, "headers": [*msg.get("headers", []), (b"set-cookie", cookie)]}
            await send(msg)
        return wrapped
