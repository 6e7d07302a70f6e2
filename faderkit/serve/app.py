"""The HTTP face of the console: a Starlette app serving the page and a small JSON/PNG API.

    GET  /                            the page (assets under /static/, shipped in the package)
    GET  /api/model                   attributes, fader range, offered options, upload limits
    POST /api/images                  the image's bytes as the body -> {id, name, inferred, values, faces, note}
    GET  /api/images/{id}/input.png   the image as the model sees it (?align=crop: the loader's crop,
                                      else face 1 aligned when faces were found)
    GET  /api/images/{id}/photo.png   the photo as held (what the residual output mode edits)
    POST /api/edit                    {"image": id, "values": {...}, "options": {"mode": ..., "align": ...}}
                                      -> the edit, PNG
    GET  /api/test-images             ?offset=&limit=: the dataset's test images (when present)
    GET  /api/test-images/{i}.png     one of them
    POST /api/test-images/{i}         hold it for editing, like an upload

A POST from another origin is refused (403), and with a token set every request needs it (401); see
:mod:`.fence`. Errors are JSON ``{"error": message}`` with a 4xx status (5xx only for a bug); every request is
independent, so a bad one never stops the server.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import FaderkitError
from .console import Console, png_bytes
from .fence import Fence
from .uploads import UploadError, too_large

STATIC = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8",
          "favicon.svg": "image/svg+xml"}
#: The page loads nothing from elsewhere, runs no inline script and cannot be framed.
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
                                 b"script-src 'self'; connect-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; "
                                 b"form-action 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
UPLOAD_TYPES = ("image/", "application/octet-stream")
#: Uploads read and decoded at once (two of them decode at a time, see Console.read_upload).
UPLOAD_SLOTS = 4


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                names = {k for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [h for h in SECURITY_HEADERS if h[0] not in names]
            await send(message)

        await self.app(scope, receive, with_headers)


def _lower_priority() -> None:
    """Nice the calling thread by 10 (Linux sets priorities per thread); elsewhere, leave it as it is."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + 10)
    except (AttributeError, OSError):
        pass


def _asset(name: str) -> bytes:
    return resources.files("faderkit.serve").joinpath("static", name).read_bytes()


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(int(declared), limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(None, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(console: Console, allowed_hosts=("127.0.0.1", "localhost", "[::1]", "::1"),
               token: str | None = None) -> Starlette:
    """The ASGI app for ``console``. ``allowed_hosts``: Host headers answered (others get 400), which
    keeps a web page elsewhere from reaching a localhost server through DNS rebinding; every
    state-changing request from another origin is refused, and ``token``, when given, is asked of
    every request (see :mod:`.fence`)."""
    page = _asset("index.html")
    assets = {name: (_asset(name), kind) for name, kind in STATIC.items()}
    # Every model call runs on one thread, in order of arrival: each call already uses all of torch's
    # threads, and one thread keeps torch's allocations in one malloc arena (a flat RSS under load).
    model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faderkit-model")
    # Uploads decode on two threads of their own at a lower CPU priority, so that a flood of large
    # uploads cannot starve the edits (torch's threads wait on each other, and on a busy core).
    decode_threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="faderkit-decode", initializer=_lower_priority)

    # At most UPLOAD_SLOTS bodies in memory at once, however many clients send: with the held images'
    # byte cap this bounds the memory a flood of uploads can take.
    upload_slots = asyncio.Semaphore(UPLOAD_SLOTS)

    async def on_model_thread(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(model_thread, functools.partial(fn, *args))

    async def index(request):
        return Response(page, media_type="text/html; charset=utf-8")

    async def static(request):
        name = request.path_params["name"]
        if name not in assets:
            return error(404, f"no such file: {name}")
        body, kind = assets[name]
        return Response(body, media_type=kind)

    async def model(request):
        return JSONResponse(console.describe())

    async def upload(request):
        kind = request.headers.get("content-type", "")
        if not kind.startswith(UPLOAD_TYPES):
            return error(415, "send the image's bytes as the request body, with Content-Type image/* or "
                              f"application/octet-stream (got {kind or 'none'})")
        name = unquote(request.headers.get("x-filename", ""))[:120].strip() or "the file"
        async with upload_slots:  # the others wait, their bodies still in the network's buffers
            data = await read_body(request, console.max_upload_bytes)
            x = await asyncio.get_running_loop().run_in_executor(decode_threads, console.read_upload, data, name)
            del data
        held = await on_model_thread(console.add, x, name)
        return JSONResponse(held, status_code=201)

    async def input_png(request):
        body = await run_in_threadpool(console.input_png, request.path_params["id"],
                                       request.query_params.get("align", "aligned"))
        return Response(body, media_type="image/png")

    async def photo_png(request):
        body = await run_in_threadpool(console.photo_png, request.path_params["id"])
        return Response(body, media_type="image/png")

    async def edit(request):
        try:
            body = json.loads(await read_body(request, 64 * 1024))
        except (ValueError, UnicodeDecodeError):
            return error(400, 'expected a JSON body: {"image": id, "values": {...}}')
        if not isinstance(body, dict) or not isinstance(body.get("image"), str):
            return error(400, 'expected a JSON body: {"image": id, "values": {...}}')
        if not isinstance(body.get("options", {}), (dict, type(None))):
            return error(400, 'options must be an object, e.g. {"mode": "residual"}')

        def model_part():  # PNG encoding too: beside torch's threads it would only slow them down
            started = time.perf_counter()
            out = console.edit(body["image"], body.get("values", {}), body.get("options"))
            done = time.perf_counter()
            return png_bytes(out), started, done, time.perf_counter()

        arrived = time.perf_counter()
        png, started, done, encoded = await on_model_thread(model_part)
        # where the time went, for the browser's devtools and benchmarks/serve_latency.py
        timing = (f"queue;dur={1000 * (started - arrived):.1f}, model;dur={1000 * (done - started):.1f}, "
                  f"png;dur={1000 * (encoded - done):.1f}")
        return Response(png, media_type="image/png", headers={"Server-Timing": timing})

    async def test_images(request):
        if console.test_images is None:
            return JSONResponse({"state": "absent", "reason": "turned off (--no-test-images)", "count": 0, "items": []})
        try:
            offset = int(request.query_params.get("offset", 0))
            limit = min(48, int(request.query_params.get("limit", 12)))
        except ValueError:
            return error(400, "offset and limit must be whole numbers")
        return JSONResponse(console.test_images.status(offset, limit))

    async def test_image_png(request):
        if console.test_images is None:
            return error(404, "this server offers no test images")
        x = await run_in_threadpool(console.test_images.image, request.path_params["index"])
        return Response(png_bytes(x[0]), media_type="image/png")

    async def pick_test_image(request):
        held = await on_model_thread(console.add_test_image, request.path_params["index"])
        return JSONResponse(held, status_code=201)

    async def refused(request, exc):
        return error(exc.status, str(exc))

    async def bad_request(request, exc):
        return error(400, str(exc))

    async def not_found(request, exc):
        return error(404, str(exc.args[0]) if exc.args else "not found")

    async def unexpected(request, exc):  # Starlette then re-raises it, so the server log shows the traceback
        return error(500, f"unexpected {type(exc).__name__} in faderkit serve (a bug; the server log has the details)")

    routes = [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/api/model", model),
        Route("/api/images", upload, methods=["POST"]),
        Route("/api/images/{id}/input.png", input_png),
        Route("/api/images/{id}/photo.png", photo_png),
        Route("/api/edit", edit, methods=["POST"]),
        Route("/api/test-images", test_images),
        Route("/api/test-images/{index:int}.png", test_image_png),
        Route("/api/test-images/{index:int}", pick_test_image, methods=["POST"]),
    ]
    hosts = ["*"] if "*" in allowed_hosts else list(allowed_hosts)
    return Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders), Middleware(TrustedHostMiddleware, allowed_hosts=hosts),
                    Middleware(Fence, token=token)],
        exception_handlers={UploadError: refused, FaderkitError: bad_request, LookupError: not_found,
                            Exception: unexpected},
    )
