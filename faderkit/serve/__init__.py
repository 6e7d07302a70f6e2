"""``faderkit serve``: the mixing console, a local web page with one fader per attribute.

Needs the ``serve`` extra (Starlette and uvicorn): ``pip install 'faderkit[serve]'``. The page is a
thin client of :class:`faderkit.editor.Editor`; see :mod:`.console` (state and edits), :mod:`.app`
(HTTP), :mod:`.uploads` (reading uploads safely) and ``static/`` (the page itself, no internet needed).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from pathlib import Path

from ..errors import FaderkitError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _require_extra() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise FaderkitError(f"faderkit serve needs its web extra ({exc.name} is missing): "
                            "pip install 'faderkit[serve]'") from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on (host, port); port 0 picks a free one. Failures are one line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FaderkitError(f"--host {host}: cannot resolve it ({exc.strerror}); use an address such as 127.0.0.1") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)  # uvicorn's backlog: a browser opening the printed URL at once waits, is not refused
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise FaderkitError(f"port {port} on {host} is already in use (another faderkit serve?); choose another "
                                "with --port, or --port 0 for any free port") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise FaderkitError(f"not allowed to listen on port {port} (ports below 1024 need privileges); "
                                "choose another with --port") from None
        raise FaderkitError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)  # connections wait in the backlog from now on: the URL printed next already answers
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def console_for(checkpoint: str | Path, *, device: str = "cpu", threads: int | None = None, data_root=None,
                test_images: bool = True,
                fader_range=(-1.0, 2.0), max_upload_mb: float = 20, max_megapixels: float = 25,
                max_side: int = 1024, max_images: int = 32, max_held_mb: float = 256, log=print):
    """A :class:`.console.Console` for ``checkpoint``: the Editor loaded, the dataset's test images
    ready to open in the background (unless ``test_images`` is false); ``threads``: torch's CPU threads."""
    from ..editor import Editor
    from ..recipe import validate
    from .console import Console
    from .testimages import TestImages

    checkpoint = Path(checkpoint)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    editor = Editor.load(checkpoint, device=device)
    if data_root is not None and not Path(data_root).expanduser().is_dir():
        raise FaderkitError(f"--data-root {data_root} is not a folder; give the dataset's root")
    tests = None
    if test_images:
        recipe = validate(editor.meta["recipe"], f"embedded in {checkpoint}")
        tests = TestImages(recipe, editor.attributes, data_root, log=log)
    return Console(editor, name=checkpoint.name, fader_range=fader_range, max_images=max_images,
                   max_upload_bytes=int(max_upload_mb * 2**20), max_pixels=int(max_megapixels * 1e6),
                   max_side=max_side, max_held_bytes=int(max_held_mb * 2**20),
                   test_images=tests)


def guard(host: str, token: str | None, log) -> str | None:
    """The token the console will ask for: ``token`` (checked), or beyond loopback one generated."""
    from .fence import check_token, new_token

    if token is not None:
        problem = check_token(token)
        if problem:
            raise FaderkitError(problem)
        return token
    if is_loopback(host):
        return None
    log(f"listening on {host}, beyond this machine: the console asks for a token, generated for this run "
        "(choose your own with --token); open the URL below, which carries it")
    return new_token()


def _server(console, sock: socket.socket, host: str, log, token: str | None = None):
    import uvicorn

    from .app import create_app

    open_to_all = not is_loopback(host)
    app = create_app(console, allowed_hosts=("*",) if open_to_all else LOOPBACK + ("[::1]",), token=token)
    if console.test_images is not None and console.test_images.state == "loading":
        console.test_images.start()
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))


def serve(checkpoint: str | Path, host: str = "127.0.0.1", port: int = 8000, *, log=print, ready=print,
          token: str | None = None, **options) -> None:
    """Load ``checkpoint`` and serve the console until Ctrl-C; ``options`` as :func:`console_for`.
    ``token``: asked of every request (beyond loopback one is generated when none is given).
    ``ready(url)`` is called once the port is open, with the token in the URL when there is one."""
    _require_extra()
    token = guard(host, token, log)
    console = console_for(checkpoint, log=log, **options)
    sock = bind(host, port)
    server = _server(console, sock, host, log, token)
    ready(url_of(sock, host) + (f"?token={token}" if token else ""))
    server.run(sockets=[sock])


class Running:
    """A console served from a background thread, for notebooks and tests::

        with Running(console) as running:   # or running = Running(console) ... running.stop()
            print(running.url)
    """

    def __init__(self, console, host: str = "127.0.0.1", port: int = 0, log=print, token: str | None = None):
        _require_extra()
        import threading
        import time

        self.token = guard(host, token, log)
        sock = bind(host, port)
        self.url = url_of(sock, host)
        self.server = _server(console, sock, host, log, self.token)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True,
                                       name="faderkit-serve")
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise FaderkitError(f"the console at {self.url} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def __enter__(self) -> "Running":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
