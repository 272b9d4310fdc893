"""The README's two commands, run from a clean clone as a newcomer would (slow: a fresh .venv); and `up`
run from this checkout, to see it outlive its embedded servers' deaths."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


def readme_commands() -> dict[str, str]:
    block = re.search(r"## The two commands.*?```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    return {"up": commands[0], "test": commands[1]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def clone() -> Iterator[Path]:
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        pytest.fail("this test clones the repository: run it from a git checkout with at least one commit")
    # Outside pytest's own temp folders: the inner `dev.py test` runs pytest too, and pytest prunes old
    # temp folders, which could pull the clone's .venv out from under a running server.
    folder = Path(tempfile.mkdtemp(prefix="console-readme-"))
    target = folder / "console"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True)
    yield target
    shutil.rmtree(folder, ignore_errors=True)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL",
                                                             "SECRET_KEY", "TEST_DATABASE_NAME", "STATIC_ROOT",
                                                             "DEBUG", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE"}}
    env.update(extra)
    return env


def login(client: httpx.Client, base: str, username: str, password: str) -> None:
    page = client.get(f"{base}/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = client.post(
        f"{base}/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token, "next": ""},
        headers={"Referer": f"{base}/accounts/login/"},
    )
    assert answer.status_code == 302, answer.text[:500]


def _processes_of(folder: Path, command_part: str) -> list[int]:
    """PIDs of live processes running in `folder` whose command line holds `command_part`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if command_part in cmdline and Path(cwd) == folder.resolve() and state != "Z":
            found.append(int(entry.name))
    return found


def test_the_up_command_serves_the_console_with_demo_data_and_logins_per_role(clone):
    command = readme_commands()["up"]
    assert command == "python3 dev.py up"
    port = free_port()
    env = clean_env(PORT=str(port), CONSOLE_DATA_DIR=str(clone.parent / "up-data"), PYTHONUNBUFFERED="1")
    log = clone.parent / "up.log"
    with log.open("w") as out:
        proc = subprocess.Popen(command.split(), cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while "The console is up" not in log.read_text():
            assert proc.poll() is None, f"`{command}` exited early:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"`{command}` did not come up:\n{log.read_text()[-3000:]}"
            time.sleep(1)
        output = log.read_text()
        assert f"http://127.0.0.1:{port}/" in output
        for login_line in ("moderator / moderator-demo", "writer / writer-demo", "admin / admin-demo"):
            assert login_line in output
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(follow_redirects=False, timeout=30) as writer:
            login(writer, base, "writer", "writer-demo")
            policies = writer.get(f"{base}/policies/")
            assert policies.status_code == 200
            assert "Spam and scams" in policies.text
        with httpx.Client(follow_redirects=False, timeout=30) as moderator:
            login(moderator, base, "moderator", "moderator-demo")
            assert moderator.get(f"{base}/policies/").status_code == 403
            assert moderator.get(f"{base}/items/").status_code == 200
        assert httpx.get(f"{base}/static/vendor/htmx-2.0.11.min.js", timeout=30).status_code == 200

        # A child that dies is started again while the rest keeps serving.
        [worker] = _processes_of(clone, "safeguard_worker")
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while f"the reasoner worker (pid {worker}) exited with -9; starting it again" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        assert httpx.get(f"{base}/healthz", timeout=30).status_code == 200
        while not [pid for pid in _processes_of(clone, "safeguard_worker") if pid != worker]:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
    finally:
        _stop(proc, signal.SIGINT)
    assert proc.returncode == 0, log.read_text()[-3000:]


def _stop(proc: subprocess.Popen, sig: signal.Signals) -> None:
    """Ask `proc` to stop with `sig`; kill it if it has not stopped within a minute."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def _servers_of(data: Path) -> dict[int, str]:
    """The embedded servers' live processes under `data`, by PID: PostgreSQL's postmaster and backends (a
    backend's command line does not name the folder, but every one runs in it) and redis-server (in its
    --dir)."""
    found = {}
    for proc in psutil.process_iter(["name", "cwd", "status"]):
        name, cwd = proc.info["name"], proc.info["cwd"]
        if name in {"postgres", "redis-server"} and cwd and Path(cwd).is_relative_to(data) and _alive(proc):
            found[proc.pid] = name
    return found


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_for(condition, log: Path, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"{what} within {timeout} s:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)
    return result


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Up:
    """A running `python3 dev.py up` of this checkout (see `_up`)."""

    proc: subprocess.Popen
    log: Path
    data: Path
    base: str
    env: dict[str, str]
    left: dict[int, str] = field(default_factory=dict)  # embedded servers still running after it stopped
    output: str = ""


@contextlib.contextmanager
def _up(prefix: str) -> Iterator[Up]:
    """This checkout's dev.py (a clone would hold the last commit's) with this checkout's .venv, and a data
    folder and port of its own, so it runs beside another `up` or test run. Stopped with SIGTERM at the
    end; whatever embedded server it left is killed, so a failure leaves nothing running."""
    folder = Path(tempfile.mkdtemp(prefix=prefix)).resolve()
    data, port = folder / "data", free_port()
    env = clean_env(PORT=str(port), CONSOLE_DATA_DIR=str(data), PYTHONUNBUFFERED="1")
    log = folder / "up.log"
    with log.open("w") as out:
        proc = subprocess.Popen(readme_commands()["up"].split(), cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    up = Up(proc, log, data, f"http://127.0.0.1:{port}", env)
    try:
        _wait_for(lambda: "The console is up" in log.read_text() or proc.poll() is not None, log,
                  "`up` came up", timeout=300)
        assert proc.poll() is None, log.read_text()[-3000:]
        yield up
    finally:
        _stop(proc, signal.SIGTERM)
        up.left, up.output = _servers_of(data), log.read_text()[-3000:]
        for pid in up.left:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        shutil.rmtree(folder, ignore_errors=True)


def test_up_starts_its_killed_servers_again_and_stops_the_ones_running_at_the_end():
    with _up("console-up-restarts-") as up:
        children = psutil.Process(up.proc.pid).children(recursive=True)

        # Redis killed: `up` starts another, and that one is the one it stops at the end.
        [redis_pid] = [pid for pid, name in _servers_of(up.data).items() if name == "redis-server"]
        os.kill(redis_pid, signal.SIGKILL)
        _wait_for(lambda: "embedded Redis exited with -9; starting it again" in up.log.read_text(), up.log,
                  "`up` saw Redis die")

        # The postmaster killed: `up` starts PostgreSQL again, and the console is ready again.
        killed = int((up.data / "pg" / "postmaster.pid").read_text().split()[0])
        os.kill(killed, signal.SIGKILL)
        started = time.monotonic()
        line = _wait_for(lambda: re.search(rf"embedded PostgreSQL is running again \(pid (\d+), was {killed}\)",
                                           up.log.read_text()), up.log, "`up` started PostgreSQL again")
        _wait_for(lambda: _ready(up.base), up.log, "/readyz answered 200 again")
        print(f"PostgreSQL killed to /readyz 200: {time.monotonic() - started:.1f} s")
        servers = _servers_of(up.data)
        assert int(line.group(1)) in servers and killed not in servers
        assert "redis-server" in servers.values() and redis_pid not in servers
    assert up.proc.returncode == 0, up.output
    assert up.left == {}, (up.left, up.output)
    assert not [child.pid for child in children if _alive(child)], up.output


_WHO = """
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("SELECT current_user, tableowner, has_table_privilege('console_app', tablename, 'UPDATE') "
                   "FROM pg_tables WHERE tablename = 'console_auditevent'")
    print("who:", *cursor.fetchone())
"""


def test_up_serves_as_the_application_role_and_migrates_as_the_owner():
    with _up("console-up-roles-") as up:
        servers = [child for child in psutil.Process(up.proc.pid).children(recursive=True)
                   if any(part in " ".join(child.cmdline()) for part in ("daphne", "rqworker", "safeguard_worker"))]
        assert len(servers) >= 3, servers
        for child in servers:
            environ = child.environ()
            assert urlsplit(environ["DATABASE_URL"]).username == "console_app", child.cmdline()
            assert "DATABASE_OWNER_URL" not in environ, child.cmdline()
        # Another command, beside `up`: as the application's role, on tables migrate made as the owner.
        who = subprocess.run([*readme_commands()["up"].split()[:2], "manage", "shell", "-c", _WHO], cwd=ROOT,
                             env=up.env, capture_output=True, text=True, timeout=300)
        assert "who: console_app postgres False" in who.stdout, who.stdout[-2000:] + who.stderr[-2000:]
    assert up.proc.returncode == 0, up.output


def test_the_test_command_passes_in_a_clean_clone(clone):
    command = readme_commands()["test"]
    assert command == "python3 dev.py test"
    # The whole suite is what CI runs; here the command itself is proven on one fast test module.
    env = clean_env(CONSOLE_DATA_DIR=str(clone.parent / "test-data"))
    result = subprocess.run(
        [*command.split(), "tests/console/test_models.py", "-q"],
        cwd=clone, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"\d+ passed", result.stdout)
