"""A live console for browser tests and the bench: the real ASGI app under daphne, the real reasoner
worker (scripted engine), and Debian's chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
MISSING_CHROMIUM = ("chromium is not installed: the browser tests drive Debian's chromium. Install it with "
                    "`apt-get install -y chromium` (.ci/run does this before the test suite).")


def database_url(settings_dict: dict[str, Any]) -> str:
    """A DATABASE_URL for a child process, naming the database `settings_dict` describes (pytest-django's
    test database, the bench database) on the server the console's own DATABASE_URL names. Only the path
    changes, so a socket directory given as `?host=` (pgserver's form) is kept."""
    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit(parts._replace(path="/" + quote(settings_dict["NAME"], safe="")))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chromium_path() -> str | None:
    return shutil.which("chromium")


def collect_static(static_root: Path, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT,
                   env={**env, "STATIC_ROOT": str(static_root)}, check=True, timeout=120)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_for_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}):\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not answer {url} within {timeout} s:\n{log.read_text()[-4000:]}")


@contextmanager
def console_processes(*, database: dict[str, Any], workdir: Path, worker: bool = True,
                      extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Run daphne (and the reasoner worker) against `database`; yields the server's base URL.

    Static files are collected into `workdir` first, so the server runs with DEBUG off as in production.
    """
    env = {**os.environ, "DATABASE_URL": database_url(database), "DEBUG": "0", "SAFEGUARD_BACKEND": "scripted",
           "STATIC_ROOT": str(workdir / "static"), **(extra_env or {})}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    # Servers never connect as the owner (`dev.py manage bench_review_pages` has its URL, for another database).
    env.pop("DATABASE_OWNER_URL", None)
    collect_static(workdir / "static", env)
    port = free_port()
    log = workdir / "server.log"
    processes: list[subprocess.Popen] = []
    with log.open("ab") as out:
        try:
            server = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "console.asgi:application"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )
            processes.append(server)
            if worker:
                processes.append(subprocess.Popen([sys.executable, "manage.py", "safeguard_worker"], cwd=ROOT,
                                                  env=env, stdout=out, stderr=subprocess.STDOUT))
            base = f"http://127.0.0.1:{port}"
            _wait_for_http(f"{base}/healthz", server, log)
            yield base
        finally:
            for process in reversed(processes):
                _stop(process)


def launch_chromium(playwright: Any) -> Any:
    path = chromium_path()
    if not path:
        raise RuntimeError(MISSING_CHROMIUM)
    return playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)


def call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a service (or factory) in a thread of its own: services broadcast with async_to_sync, which
    refuses to run in the test's thread, where Playwright's event loop lives."""
    def run() -> Any:
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=60)
