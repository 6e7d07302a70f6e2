"""What keeps other web pages and other people out of the console: an Origin check and a token.

- **Origin.** A page elsewhere can make the user's browser send requests to a console it can reach
  (localhost included). Browsers mark such a request with ``Origin`` and ``Sec-Fetch-Site``, so every
  request that changes state (any method but GET/HEAD) is refused (403) unless it comes from the
  console's own page, or from a program that sends neither header (curl, Python).
- **Token.** A console reachable from a network asks for a token (``faderkit serve --host ... --token``,
  or one generated and printed). The page URL carries it once (``/?token=...``); the server answers
  with a cookie for this port only (HttpOnly, SameSite=Strict: a page elsewhere cannot send it) and
  the clean URL. Programs send ``Authorization: Bearer <token>`` or ``X-Faderkit-Token``. Without it
  the page asks for it, and the API answers 401 with one line.
"""

from __future__ import annotations

import html
import json
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
#: The shortest token accepted: anything shorter can be guessed over a network.
MIN_TOKEN = 16


def new_token() -> str:
    return secrets.token_urlsafe(24)


def check_token(token: str) -> str | None:
    """What is wrong with a token a user chose (None: nothing)."""
    if len(token) < MIN_TOKEN:
        return f"--token must be at least {MIN_TOKEN} characters (a shorter one can be guessed); leave it out to get one generated"
    if not all(c.isascii() and (c.isalnum() or c in "-_.~") for c in token):
        return "--token may hold only letters, digits and - _ . ~ (it travels in URLs and cookies)"
    return None


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


async def _send(send, status: int, body: bytes, kind: str, extra=()) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind.encode()), (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body})


async def _refuse(send, status: int, message: str) -> None:
    await _send(send, status, json.dumps({"error": message}).encode(), "application/json")


def cross_origin(headers: dict[str, str]) -> str | None:
    """Why a state-changing request comes from another origin (None: it does not)."""
    site = headers.get("sec-fetch-site")
    if site and site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site: {site}"
    origin = headers.get("origin")
    if origin is None:
        return None
    parts = urlsplit(origin)
    if origin == "null" or parts.scheme not in ("http", "https") or parts.netloc.lower() != headers.get("host", "").lower():
        return f"Origin {origin[:80]}"
    return None


ASK = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>faderkit console: token</title></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 4em auto">
<h1>This console asks for its token</h1>
<p>{why} Open the URL that <code>faderkit serve</code> printed (it ends in <code>?token=...</code>), or enter the token:</p>
<form method="get" action="/"><input name="token" type="password" size="40" autofocus> <button>Open</button></form>
</body></html>"""


class Fence:
    """ASGI middleware: the Origin check on every state-changing request, and the token when one is set."""

    def __init__(self, app, token: str | None = None):
        self.app, self.token = app, token

    def _cookie_name(self, scope) -> str:
        server = scope.get("server") or ("", 0)
        return f"faderkit_token_{server[1]}"

    def _presented(self, scope, headers) -> str | None:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        if "x-faderkit-token" in headers:
            return headers["x-faderkit-token"]
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is no token
            return None
        morsel = cookie.get(self._cookie_name(scope))
        return morsel.value if morsel else None

    def _valid(self, value: str | None) -> bool:
        return value is not None and secrets.compare_digest(value.encode("utf-8", "replace"), self.token.encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = _headers(scope)
        if scope["method"] not in SAFE_METHODS:
            why = cross_origin(headers)
            if why:
                return await _refuse(send, 403, f"refused: a request from another site ({why}); only this console's "
                                                "own page may upload or edit")
        if self.token is None or self._valid(self._presented(scope, headers)):
            return await self.app(scope, receive, send)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = (query.get("token") or [None])[0]
        page = scope["path"] == "/" and scope["method"] in ("GET", "HEAD")
        if page and self._valid(given):  # the printed URL: a cookie for this port, and the URL without the token
            cookie = f"{self._cookie_name(scope)}={self.token}; Path=/; HttpOnly; SameSite=Strict"
            return await _send(send, 303, b"", "text/plain", [(b"location", b"/"), (b"set-cookie", cookie.encode())])
        why = "That token is not this console's." if given else "It is reachable from a network, so it needs one."
        if page:
            body = ASK.format(why=html.escape(why)).encode()
            return await _send(send, 401, body, "text/html; charset=utf-8",
                               [(b"content-security-policy", b"default-src 'none'; form-action 'self'; frame-ancestors 'none'")])
        await _refuse(send, 401, "this console needs its token: open the URL faderkit serve printed (it ends in "
                                 "?token=...), or send the header Authorization: Bearer <token>")
