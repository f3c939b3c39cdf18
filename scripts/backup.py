"""Backups with point-in-time restore of a state dir's private PostgreSQL, by pgBackRest (docs/adr/0025).

Usage: python -m scripts.backup schedule --state-dir DIR   (the stack's supervised `backups` program)

The server archives every WAL segment into the repository as it fills (archive_command, at most
BACKUP_ARCHIVE_TIMEOUT_SECONDS after a write); `schedule` takes a full backup every
BACKUP_FULL_EVERY_DAYS and a differential every BACKUP_DIFF_EVERY_HOURS. The repository and
pgBackRest's own files sit beside the data dir (<state-dir>/backups, <state-dir>/pgbackrest), owned
by the server's OS user, readable by it alone. scripts.stack runs `make backup`, `make restore` and
the lines of `make status` with what is here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
from sqlalchemy.engine import make_url

from confbook_common.settings import ConfigError, Env
from scripts import infra

log = logging.getLogger("backup")

PGBACKREST = "/usr/bin/pgbackrest"
STANZA = "confbook"
REPOSITORY_DIR = "backups"
PGBACKREST_DIR = "pgbackrest"
BACKUP_TYPES = ("full", "diff", "incr")
# How often `schedule` looks whether a backup is due, and waits after a failed one.
_SCHEDULE_CHECK_SECONDS = 60.0
_PROMOTION_TIMEOUT = 600.0


class BackupError(Exception):
    """A backup or restore cannot be made; the message says why."""


@dataclasses.dataclass(frozen=True)
class BackupSettings:
    full_every: timedelta
    diff_every: timedelta
    retention_full: int  # full backups kept (with the differentials and WAL they need)
    archive_timeout_seconds: int  # a partly filled WAL segment is archived at most this long after a write

    @classmethod
    def from_env(cls, env: Env) -> BackupSettings:
        return cls(
            full_every=timedelta(days=env.integer("BACKUP_FULL_EVERY_DAYS", 7, minimum=1)),
            diff_every=timedelta(hours=env.integer("BACKUP_DIFF_EVERY_HOURS", 6, minimum=1)),
            retention_full=env.integer("BACKUP_RETENTION_FULL", 2, minimum=1, maximum=9999999),
            archive_timeout_seconds=env.integer("BACKUP_ARCHIVE_TIMEOUT_SECONDS", 60, minimum=1),
        )


@dataclasses.dataclass(frozen=True)
class Backup:
    """One backup in the repository, as `pgbackrest info` tells."""

    label: str
    type: str  # full, diff, incr
    started: datetime
    finished: datetime


@dataclasses.dataclass(frozen=True)
class Repository:
    """The pgBackRest repository of one private PostgreSQL (by its data dir, port and superuser)."""

    data_dir: Path
    port: int
    superuser: str
    settings: BackupSettings

    @classmethod
    def of(cls, state_dir: Path, settings: BackupSettings) -> Repository:
        """The repository of the PostgreSQL that `state_dir` started itself."""
        instance = infra.load_record(state_dir).get(infra.POSTGRES)
        if instance is None:
            raise BackupError(f"no PostgreSQL is recorded in {state_dir}: start the stack first")
        if not instance.started_by_us or not instance.data_dir or not instance.url:
            raise BackupError(
                f"the stack of {state_dir} reuses a PostgreSQL that answered at DATABASE_URL before it started: "
                "back it up where it runs"
            )
        data_dir = Path(instance.data_dir)
        superuser = infra.superuser_name(data_dir, make_url(instance.url).username or "")
        return cls(data_dir, instance.port, superuser, settings)

    @property
    def path(self) -> Path:
        return self.data_dir.parent / REPOSITORY_DIR

    @property
    def own_dir(self) -> Path:
        """pgBackRest's configuration, logs and locks."""
        return self.data_dir.parent / PGBACKREST_DIR

    @property
    def config_file(self) -> Path:
        return self.own_dir / "pgbackrest.conf"

    # --- the server's side -----------------------------------------------------------------------------------

    def server_settings(self) -> list[str]:
        """The PostgreSQL settings that archive every WAL segment into the repository."""
        self.prepare()
        archive_command = f"{PGBACKREST} --config={self.config_file} --stanza={STANZA} archive-push %p"
        return [
            "archive_mode=on",
            f"archive_command={archive_command}",
            f"archive_timeout={self.settings.archive_timeout_seconds}",
        ]

    def prepare(self) -> None:
        """The repository and pgBackRest's files, owned by the server's OS user, for it alone (0700)."""
        socket_dir = infra.postgres_socket_dir(self.data_dir)
        for directory in (self.path, self.own_dir, self.own_dir / "log", self.own_dir / "lock"):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o700)
            infra.chown(directory, infra.POSTGRES)
        config = [
            "[global]",
            f"repo1-path={self.path}",
            f"repo1-retention-full={self.settings.retention_full}",
            f"log-path={self.own_dir / 'log'}",
            f"lock-path={self.own_dir / 'lock'}",
            "log-level-console=warn",
            "log-level-file=info",
            "compress-type=zst",
            # A backup starts with an immediate checkpoint rather than waiting for the next one.
            "start-fast=y",
            "",
            f"[{STANZA}]",
            f"pg1-path={self.data_dir}",
            f"pg1-port={self.port}",
            f"pg1-socket-path={socket_dir}",
            f"pg1-user={self.superuser}",
            "pg1-database=postgres",
        ]
        draft = self.config_file.with_suffix(".tmp")
        draft.write_text("\n".join(config) + "\n")
        draft.chmod(0o600)
        infra.chown(draft, infra.POSTGRES)
        draft.replace(self.config_file)

    # --- pgBackRest's commands -------------------------------------------------------------------------------

    def create_stanza(self) -> None:
        """Ready the repository for this cluster (again harmlessly); archiving works from then on."""
        self._run("stanza-create")

    def backup(self, kind: str = "full", started: Callable[[subprocess.Popen[str]], None] | None = None) -> Backup:
        """Take a backup now (pgBackRest makes a first one full whatever `kind`); returns it once finished."""
        if kind not in BACKUP_TYPES:
            raise BackupError(f"a backup is one of {', '.join(BACKUP_TYPES)}, not {kind!r}")
        self.create_stanza()
        self._run("backup", f"--type={kind}", started=started)
        return self.backups()[-1]

    def backups(self) -> list[Backup]:
        """The backups in the repository, oldest first."""
        stanzas = json.loads(self._run("info", "--output=json"))
        found = stanzas[0].get("backup", []) if stanzas else []
        return [
            Backup(
                label=entry["label"],
                type=entry["type"],
                started=datetime.fromtimestamp(entry["timestamp"]["start"], UTC),
                finished=datetime.fromtimestamp(entry["timestamp"]["stop"], UTC),
            )
            for entry in found
        ]

    def archive_now(self) -> None:
        """Everything committed so far is in the repository once this returns.

        A transaction with an id writes a commit record stamped now, so a restore to any earlier
        moment has a later record to stop at; `check` then switches to a new WAL segment and waits
        until the old one is archived.
        """
        connection = self.connect()
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT txid_current()")
        finally:
            connection.close()
        self._run("check")

    def restore(self, target: datetime | None) -> None:
        """Replace the data dir (the server stopped) with the state at `target` (None: the latest archived);
        the server, started next, replays WAL up to it and then takes writes on a timeline of its own."""
        self.check_restorable(target)
        if target is None:
            self._run("restore", "--delta", "--type=default")
        else:
            self._run(
                "restore",
                "--delta",
                "--type=time",
                f"--target={target.isoformat(sep=' ')}",
                "--target-action=promote",
            )
        # The server's socket lives in its data dir, so a backup holds the lock file of the server that ran
        # then; a process with that pid (the old server, not yet reaped) would keep the restored one from starting.
        for stale in self.data_dir.glob(".s.PGSQL.*.lock"):
            stale.unlink()

    def check_restorable(self, target: datetime | None) -> None:
        """BackupError unless some backup had finished by `target` (None: any backup at all)."""
        backups = self.backups()
        if target is None and not backups:
            raise BackupError(f"the repository {self.path} holds no backup yet")
        if target is not None and not any(backup.finished <= target for backup in backups):
            raise BackupError(f"no backup had finished by {target.isoformat()}: nothing to restore that moment from")

    def connect(self) -> Any:
        """A psycopg2 connection as the superuser: with its password over TCP, or, in a cluster made before
        the superuser had one, over the socket, which trusts local logins there."""
        superuser = infra.superuser_url(self.data_dir, self.port)
        if superuser is not None:
            return infra.connect_postgres(superuser)
        socket_dir = infra.postgres_socket_dir(self.data_dir)
        return psycopg2.connect(
            host=socket_dir, port=self.port, user=self.superuser, dbname="postgres", connect_timeout=2
        )

    def _run(self, command: str, *options: str, started: Callable[[subprocess.Popen[str]], None] | None = None) -> str:
        """Run a pgBackRest command as the server's OS user; its output, or BackupError with its complaint."""
        self.prepare()
        argv = [PGBACKREST, f"--config={self.config_file}", f"--stanza={STANZA}", *options, command]
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd="/", **infra.run_as(infra.POSTGRES),
        )  # fmt: skip
        if started:
            started(process)
        output, errors = process.communicate()
        if process.returncode != 0:
            complaint = (errors or output).strip() or f"exit status {process.returncode}"
            raise BackupError(f"pgbackrest {command} failed: {complaint}")
        return output


def archiving(settings: BackupSettings, admin_user: str) -> infra.PostgresSettings:
    """What infra gives a private PostgreSQL so that it archives its WAL into its repository."""

    def settings_for(data_dir: Path, port: int) -> list[str]:
        return Repository(data_dir, port, infra.superuser_name(data_dir, admin_user), settings).server_settings()

    return settings_for


# --- restoring ----------------------------------------------------------------------------------------------


def parse_target(text: str) -> datetime | None:
    """`latest`, or an ISO 8601 time (UTC unless it names an offset); refuses a moment still to come."""
    if text.strip().lower() == "latest":
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BackupError(f"not a time: {text!r} (e.g. 2026-12-06 08:30:00, UTC unless an offset is given)") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment > datetime.now(UTC):
        raise BackupError(f"{moment.isoformat()} has not happened yet")
    return moment.astimezone(UTC)


def restore(
    state_dir: Path,
    target: datetime | None,
    settings: BackupSettings,
    *,
    stop_services: Callable[[], object],
    empty_broker: Callable[[], object],
    start_services: Callable[[], object],
) -> None:
    """Bring the state dir's stack back to the database's state at `target` (None: the latest archived).

    The services stop first, so nothing writes meanwhile; the database is restored and promoted; the
    broker is emptied of every message (each refers to a database the restore replaced, see
    docs/adr/0025); the services start again and rebuild from the database what the broker held.
    """
    repository = Repository.of(state_dir, settings)
    repository.check_restorable(target)  # before anything is stopped
    stop_services()
    if _postgres_running(state_dir):
        try:
            repository.archive_now()
        except (BackupError, psycopg2.Error) as error:  # a broken or replaced cluster: what is archived is all
            log.warning("could not archive the latest WAL (%s); restoring from what the repository holds", error)
    infra.stop_postgres(state_dir)
    log.info("restoring the database to %s", target.isoformat() if target else "the latest archived state")
    repository.restore(target)
    infra.start_postgres(state_dir, archiving(settings, repository.superuser))
    _wait_until_promoted(repository)
    empty_broker()
    start_services()


def _postgres_running(state_dir: Path) -> bool:
    instance = infra.load_record(state_dir).get(infra.POSTGRES)
    return instance is not None and instance.pid is not None and infra.process_alive(instance.pid)


def _wait_until_promoted(repository: Repository) -> None:
    """Until recovery has reached its target and the server takes writes."""
    deadline = time.monotonic() + _PROMOTION_TIMEOUT
    while True:
        connection = repository.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_is_in_recovery()")
                (in_recovery,) = cursor.fetchone()
        finally:
            connection.close()
        if not in_recovery:
            return
        if time.monotonic() > deadline:
            raise BackupError(f"the restored database was still recovering after {_PROMOTION_TIMEOUT:.0f} s")
        time.sleep(0.2)


# --- what `make status` says ------------------------------------------------------------------------------


def status(state_dir: Path, settings: BackupSettings, now: datetime | None = None) -> list[str]:
    """When the last backup finished, and how far WAL archiving lags behind the server."""
    now = now or datetime.now(UTC)
    try:
        repository = Repository.of(state_dir, settings)
    except BackupError as error:
        return [f"backups: none ({error})"]
    try:
        backups = repository.backups()
    except BackupError as error:
        backups = []
        lines = [f"backups: cannot read the repository ({error})"]
    else:
        lines = [f"backups: {_describe_backups(backups, now)}; repository {repository.path}"]
    if _postgres_running(state_dir):
        lines.append(f"WAL archiving: {_archiving_lag(repository, now)}")
    return lines


def _describe_backups(backups: Sequence[Backup], now: datetime) -> str:
    if not backups:
        return "none yet"
    last = backups[-1]
    fulls = sum(backup.type == "full" for backup in backups)
    return (
        f"last ({last.type}) finished {last.finished:%Y-%m-%d %H:%M:%S} UTC, {_ago(now - last.finished)} ago; "
        f"{len(backups)} kept ({fulls} full)"
    )


def _archiving_lag(repository: Repository, now: datetime) -> str:
    try:
        connection = repository.connect()
    except psycopg2.Error as error:
        return f"unknown (PostgreSQL does not answer: {' '.join(str(error).split())})"
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_walfile_name(pg_current_wal_lsn()), last_archived_wal, last_archived_time, "
                "last_failed_wal, last_failed_time FROM pg_stat_archiver"
            )
            current, archived, archived_at, failed, failed_at = cursor.fetchone()
    finally:
        connection.close()
    if archived is None:
        text = "no WAL segment archived yet"
    else:
        text = f"last file archived {_ago(now - archived_at)} ago"
        behind = _segments_between(archived, current)
        if behind is not None:
            text += f"; {behind} full segment(s) waiting"
        text += f"; the current one is archived within {repository.settings.archive_timeout_seconds} s of a write"
    if failed_at is not None and (archived_at is None or failed_at > archived_at):
        text += f"; FAILING since {failed_at:%H:%M:%S} UTC ({failed}; see {repository.own_dir / 'log'})"
    return text


def _segments_between(archived: str, current: str) -> int | None:
    """Full WAL segments after the last one archived and before the one being written; None when the last
    file archived was not a segment (a timeline's history, say)."""
    try:
        first, last = (int(name[8:16], 16) * 0x100 + int(name[16:24], 16) for name in (archived[:24], current))
    except ValueError:
        return None
    return max(last - first - 1, 0) if len(archived) == 24 else None


def _ago(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


# --- the schedule -------------------------------------------------------------------------------------------


def due(backups: Sequence[Backup], settings: BackupSettings, now: datetime) -> str | None:
    """Which backup the schedule takes now, if any: a full when none is recent enough, else a differential."""
    fulls = [backup for backup in backups if backup.type == "full"]
    if not fulls or now - fulls[-1].finished >= settings.full_every:
        return "full"
    if now - backups[-1].finished >= settings.diff_every:
        return "diff"
    return None


class Schedule:
    """Takes each backup as it falls due, until SIGTERM (which also stops a backup under way)."""

    def __init__(self, state_dir: Path, settings: BackupSettings) -> None:
        self.state_dir = state_dir
        self.settings = settings
        self.stopping = threading.Event()
        self._running: subprocess.Popen[str] | None = None

    def stop(self) -> None:
        self.stopping.set()
        if self._running is not None and self._running.poll() is None:
            self._running.terminate()  # pgBackRest stops cleanly on SIGTERM, releasing its lock

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                repository = Repository.of(self.state_dir, self.settings)
                kind = due(repository.backups(), self.settings, datetime.now(UTC))
                if kind:
                    log.info("taking a %s backup", kind)
                    taken = repository.backup(kind, started=self._started)
                    log.info("%s backup %s finished", taken.type, taken.label)
            except BackupError as error:
                if not self.stopping.is_set():
                    log.warning("%s; trying again in %.0f s", error, _SCHEDULE_CHECK_SECONDS)
            finally:
                self._running = None
            self.stopping.wait(_SCHEDULE_CHECK_SECONDS)

    def _started(self, process: subprocess.Popen[str]) -> None:
        self._running = process
        if self.stopping.is_set():
            process.terminate()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.backup", description="Scheduled backups.")
    parser.add_argument("command", choices=["schedule"])
    parser.add_argument("--state-dir", type=Path, required=True, help="the state dir whose PostgreSQL to back up")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = BackupSettings.from_env(Env())
    except ConfigError as error:
        print(f"backup: {error}", file=sys.stderr)
        return 1
    schedule = Schedule(args.state_dir.resolve(), settings)

    def on_signal(signum: int, frame: Any) -> None:
        schedule.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    schedule.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
