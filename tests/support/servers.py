"""HTTP servers for tests: free ports, server subprocesses, WSGI apps in threads.

Everything listens on 127.0.0.1 only (the multi-host tests' gunicorn servers: on
addresses of network namespaces they made). Readiness checks bypass any proxy
settings from the environment.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from werkzeug.serving import make_server

LOOPBACK = "127.0.0.1"

T = TypeVar("T")

# urllib without proxies: http_proxy & co must never route loopback checks.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def gunicorn_command(
    workers: int, port: int, app: str, *options: str, host: str = LOOPBACK
) -> list[str]:
    """``python -m gunicorn`` with ``workers`` sync workers on ``host`` (loopback) ``port``.

    Gunicorn 25+ opens a control socket at one fixed path under ``$HOME`` per
    server; the tests' servers run side by side, so it is turned off where the
    installed gunicorn has it."""
    from gunicorn.config import KNOWN_SETTINGS

    cmd = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"{host}:{port}"]
    if any(setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS):
        cmd.append("--no-control-socket")
    return [*cmd, *options, app]


def until(
    what: str,
    check: Callable[[], T],
    patience: float,
    context: Callable[[], str] = lambda: "",
    step: float = 0.1,
) -> T:
    """``check()``'s first true result within ``patience`` seconds; else AssertionError
    naming ``what``, the last result and ``context()`` (a server's log, say)."""
    end = time.monotonic() + patience
    last = check()
    while not last and time.monotonic() < end:
        time.sleep(step)
        last = check()
    if not last:
        raise AssertionError(f"{what}: not within {patience}s (last: {last})\n{context()}")
    return last


def burst(send: Callable[[], T], count: int) -> list[T]:
    """``count`` calls of ``send`` made together (slow requests sent this way reach
    different sync workers; requests sent one after another may all reach one)."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: send(), range(count)))


def http_answers(url: str, timeout: float = 2.0) -> bool:
    """True when something at ``url`` answers HTTP, whatever the status."""
    try:
        with _opener.open(url, timeout=timeout) as response:
            response.read(0)
        return True
    except urllib.error.HTTPError:
        return True  # a 4xx/5xx is still an HTTP answer
    except (urllib.error.URLError, OSError):
        return False


def log_tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or "(log empty)"


@contextlib.contextmanager
def serve_process(
    cmd: list[str],
    *,
    port: int,
    env: dict[str, str] | None,
    cwd: Path,
    ready_path: str = "/",
    log_path: Path,
    timeout: float = 30,
    grace: float = 5,
    host: str = LOOPBACK,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` (a server on ``host``:``port``, 127.0.0.1 by default) for the ``with``
    block.

    The process gets its own process group, stdout+stderr go to ``log_path``.
    Waits until ``http://{host}:{port}{ready_path}`` answers with any HTTP
    status; raises ``RuntimeError`` with the log's tail if the process exits or
    ``timeout`` seconds pass first. On exit the whole group gets SIGTERM, then
    SIGKILL after ``grace`` seconds.

    ``env`` replaces the environment when given (pass ``{**os.environ, ...}``
    to extend it).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    url = f"http://{host}:{port}{ready_path}"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            code = proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"server process exited with {code} before {url} answered: {cmd}\n"
                    f"--- {log_path} ---\n{log_tail(log_path)}"
                )
            if http_answers(url, timeout=1.0):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{url} did not answer within {timeout:.0f}s: {cmd}\n"
                    f"--- {log_path} ---\n{log_tail(log_path)}"
                )
            time.sleep(0.1)
        yield proc
    finally:
        _stop_group(proc, grace)


def _stop_group(proc: subprocess.Popen[Any], grace: float) -> None:
    pgid = proc.pid  # start_new_session=True: the child leads its own group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    # Kill whatever is left of the group (the leader or children it forked).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)


@contextlib.contextmanager
def serve_wsgi_in_thread(app: Any, host: str = LOOPBACK, port: int = 0) -> Iterator[str]:
    """Serve a WSGI ``app`` from a daemon thread; yields its base URL.

    ``port=0`` picks a free port. The server is shut down on exit.
    """
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, name=f"wsgi-{server.server_port}", daemon=True
    )
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
