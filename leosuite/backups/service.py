"""The daemon's backups: make, list, delete and restore archives of server directories.

One backup or restore runs per server at a time (another answers 409), at most
``backups.max_concurrent`` archives are read or written at once daemon-wide, and each runs
as a task of the service's own nursery, so a caller that goes away never leaves a half
made backup or a half restored directory: the work completes and is audited.

Making one: a running server's type's ``backup_before`` commands are typed into its
console and ``backups.command_wait`` seconds waited, the directory is archived by a
child process (:mod:`.worker`; the type's ``backup_exclude`` left out) to a temporary
name renamed when complete, then ``backup_after`` is typed (also after a failure). The
row is written after the rename. A backup that fails once started is audited with why
(a file that cannot be read is named). The quota (``backups.quota_bytes``, counted over
every server of the server's owner; servers owned by an ADMIN, or by nobody, are
exempt) refuses a backup before it starts when the owner is at or over it, stops an
archive that grows past what was left of it, and removes the new archive when it takes
the owner over it (checked in the transaction that writes its row). Retention
(``backups.keep``, ``backups.keep_days``) runs after each new backup and never removes
that one.

Restoring one (the server at rest, kept so for the duration): the archive's SHA-256 is
checked against the record, the server's directory is moved to a sibling temporary
name, the archive restored into the real path (unsafe members refused by the engine),
and the old directory removed; on any failure the old directory is moved back.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import trio

from ..audit import Actor, AuditLog
from ..errors import Conflict, LeosuiteError, NotFound, is_internal
from ..settings import BackupsSettings
from ..store import backups as backup_table
from ..store.db import Database
from ..store.servers import ServerRecord
from ..supervision.manager import ServerManager
from . import archive, files, worker
from .jobs import Job, Jobs, Watcher
from .model import Backup, Compression, Progress, expired, name_at, over_quota
from .quota import Quota, owner_quota
from .restore import restore_into

__all__ = ["BackupService", "Opened", "Quota"]

log = logging.getLogger("leosuite.backups")


class Opened(msgspec.Struct, frozen=True):
    """A backup opened for download: its descriptor (the caller closes it) and size."""

    fd: int
    size: int
    backup: Backup


class BackupService:
    def __init__(
        self,
        *,
        db: Database,
        manager: ServerManager,
        settings: BackupsSettings,
        root: Path,
        audit: AuditLog,
        now: Callable[[], float],
    ) -> None:
        self._db = db
        self._manager = manager
        self._settings = settings
        self.root = root
        self._audit = audit
        self._now = now
        self._limiter = trio.CapacityLimiter(settings.max_concurrent)
        self.jobs = Jobs()

    # -- the service -----------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sweep the backup directory, then serve jobs until cancelled."""
        await self.sweep()
        async with trio.open_nursery() as nursery:
            self.jobs.nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    async def sweep(self) -> files.Sweep:
        """Remove what an interrupted backup left and forget rows whose file is gone."""
        rows = await self._db.call(backup_table.all_backups)
        known: dict[int, list[tuple[int, str]]] = {}
        for b in rows:
            known.setdefault(b.server_id, []).append((b.id, b.file))
        done = await trio.to_thread.run_sync(files.sweep, self.root, known)
        for path in done.partials_removed:
            log.info("backups: removed the unfinished archive %s", path)
        for path in done.orphans_removed:
            log.warning("backups: removed the archive %s, which no backup record describes", path)
        if done.vanished:
            gone = set(done.vanished)

            def forget(conn: sqlite3.Connection) -> None:
                for backup_id in gone:
                    backup_table.delete(conn, backup_id)

            await self._db.call(forget)
            for b in rows:
                if b.id in gone:
                    log.warning(
                        "backups: the file of backup %s (id %d) of server id %d is gone; "
                        "its record was removed",
                        b.name,
                        b.id,
                        b.server_id,
                    )
        return done

    # -- reading ---------------------------------------------------------------------

    def archive_path(self, backup: Backup) -> Path:
        return self.root / str(backup.server_id) / backup.file

    async def listing(self, record: ServerRecord) -> list[Backup]:
        return await self._db.call(lambda conn: backup_table.of_server(conn, record.id))

    async def get(self, record: ServerRecord, backup_id: int) -> Backup:
        found = await self._db.call(lambda conn: backup_table.get(conn, record.id, backup_id))
        if found is None:
            raise NotFound(f"server {record.name!r} has no backup {backup_id}", field="id")
        return found

    async def quota(self, record: ServerRecord) -> Quota:
        """The quota of the server's owner (limit 0: none applies)."""
        return await self._db.call(lambda conn: self._quota_in(conn, record))

    def _quota_in(self, conn: sqlite3.Connection, record: ServerRecord) -> Quota:
        return owner_quota(conn, record.owner_id, self._settings.quota_bytes)

    def status(self, server: str) -> Progress | None:
        return self.jobs.progress(server)

    @contextlib.contextmanager
    def watch(self, server: str, watcher: Watcher) -> Iterator[None]:
        """Call ``watcher`` with each progress of ``server``'s jobs during the block."""
        with self.jobs.watch(server, watcher):
            yield

    async def open_download(self, record: ServerRecord, backup_id: int) -> Opened:
        backup = await self.get(record, backup_id)
        path = self.archive_path(backup)
        try:
            fd, size = await trio.to_thread.run_sync(files.open_archive, path)
        except OSError:
            raise NotFound(f"the file of backup {backup_id} is missing", field="id") from None
        return Opened(fd=fd, size=size, backup=backup)

    # -- changes ---------------------------------------------------------------------

    async def create(
        self, record: ServerRecord, *, actor: Actor, by: str, note: str = ""
    ) -> Backup:
        """Make a backup of ``record`` now; it is returned once complete (see the module
        doc for the quota, commands and retention)."""
        quota = await self.quota(record)
        if quota.limit and quota.used >= quota.limit:
            raise Conflict(
                f"the backups of this server's owner use {quota.used} bytes, at or over the "
                f"quota of {quota.limit} bytes (backups.quota_bytes): delete some first"
            )
        job = self.jobs.begin(record.name, Progress(server=record.name, phase="archiving"))
        try:
            return await self.jobs.run(
                job, lambda: self._create(job, record, actor, by, note, quota)
            )
        except archive.UnreadableFile as exc:
            message = (
                f"the backup stopped: {exc.message}; make it readable to the daemon, or "
                "leave it out with the type's backup_exclude"
            )
            await self._failed(record, message, actor)
            raise Conflict(message) from None
        except LeosuiteError as exc:
            await self._failed(record, "internal error" if is_internal(exc) else exc.message, actor)
            raise

    async def _failed(self, record: ServerRecord, message: str, actor: Actor) -> None:
        """Audit a backup that was not made, with why."""
        with trio.CancelScope(shield=True):
            await self._audit.record_done(
                "server",
                f"backup not made: {message[:300]}",
                actor=actor,
                session=record.name,
                level="warning",
            )

    async def _create(
        self, job: Job, record: ServerRecord, actor: Actor, by: str, note: str, quota: Quota
    ) -> Backup:
        name = record.name
        stype = self._manager.stype(record.type)
        directory = await trio.to_thread.run_sync(files.make_server_dir, self.root, record.id)
        taken = await self._db.call(lambda conn: backup_table.names_of_server(conn, record.id))
        created_at = self._now()
        compression: Compression = "gzip" if self._settings.compression == "gzip" else "zstd"
        backup = Backup(
            id=0,
            server_id=record.id,
            name=name_at(created_at, taken),
            created_at=created_at,
            size=0,
            sha256="",
            files=0,
            source_bytes=0,
            compression=compression,
            by=by,
            note=note,
        )
        dest = directory / backup.file
        typed = False
        try:
            if stype.backup_before and self._manager.supervisor(name).state.value == "running":
                job.set_phase("commands")
                typed = True
                for line in stype.backup_before:
                    await self._type(name, line)
                await trio.sleep(self._settings.command_wait)
            job.set_phase("archiving")
            result = await worker.create_archive(
                self._manager.dirs.server(name),
                dest,
                compression=compression,
                exclude=stype.backup_exclude,
                progress=job.progress_from_thread,
                limiter=self._limiter,
                # An archive grows only to what is left of the quota when it starts.
                max_size=quota.limit - quota.used if quota.limit else None,
            )
        except archive.ArchiveTooLarge as exc:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(files.remove_quietly, dest)
            raise Conflict(
                f"the backup grew past the {exc.limit} bytes left to the owner; with the "
                f"{quota.used} bytes of backups the owner has, that is over the quota of "
                f"{quota.limit} bytes (backups.quota_bytes): it was stopped and removed"
            ) from None
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(files.remove_quietly, dest)
            raise
        finally:
            if typed:
                with trio.CancelScope(shield=True):
                    for line in stype.backup_after:
                        await self._type(name, line)
        backup = msgspec.structs.replace(
            backup,
            size=result.size,
            sha256=result.sha256,
            files=result.files,
            source_bytes=result.source_bytes,
        )
        with trio.CancelScope(shield=True):
            stored = await self._store(record, backup, dest)
            await self._audit.record_done(
                "server",
                f"backup {stored.name} created ({stored.size} bytes, {stored.files} files, "
                f"{stored.compression})" + (f": {note[:100]}" if note else ""),
                actor=actor,
                session=name,
            )
            await self._retention(record, stored, actor)
        return stored

    async def _type(self, server: str, line: str) -> None:
        """Type a before or after command; a server that stopped meanwhile is no fault."""
        try:
            await self._manager.command(server, line)
        except LeosuiteError as exc:
            log.info("backups: %s: command %r not typed: %s", server, line, exc.message)

    async def _store(self, record: ServerRecord, backup: Backup, dest: Path) -> Backup:
        """Write the row of a complete archive, unless it takes the owner over the quota
        or the server is gone meanwhile (the archive is removed then). The quota is read
        in the transaction that writes the row, so backups finishing together cannot
        pass it together."""

        def write(conn: sqlite3.Connection) -> Backup | Quota | None:
            exists = conn.execute("SELECT 1 FROM servers WHERE id = ?", (record.id,)).fetchone()
            if exists is None:
                return None
            quota = self._quota_in(conn, record)
            if over_quota(quota.used, backup.size, quota.limit):
                return quota
            return backup_table.add(conn, backup)

        try:
            stored = await self._db.call(write)
        except BaseException:
            await trio.to_thread.run_sync(files.remove_quietly, dest)
            raise
        if isinstance(stored, Backup):
            return stored
        await trio.to_thread.run_sync(files.remove_quietly, dest)
        if stored is None:
            raise NotFound(f"server {record.name!r} was destroyed during its backup")
        raise Conflict(
            f"the backup was {backup.size} bytes; with the {stored.used} bytes of backups "
            f"the owner has, that is over the quota of {stored.limit} bytes "
            "(backups.quota_bytes): it was removed"
        )

    async def _retention(self, record: ServerRecord, made: Backup, actor: Actor) -> None:
        settings = self._settings
        if not settings.keep and not settings.keep_days:
            return
        existing = await self.listing(record)
        drop = expired(
            existing,
            keep=settings.keep,
            keep_days=settings.keep_days,
            now=self._now(),
            spare=made.id,
        )
        for old in drop:
            await self._remove(old)
            await self._audit.record_done(
                "server",
                f"backup {old.name} removed by retention (backups.keep, backups.keep_days)",
                actor=actor,
                session=record.name,
            )

    async def _remove(self, backup: Backup) -> None:
        """Remove the row, then the file (a crash between leaves an orphan the sweep
        removes, never a row without its file)."""
        await self._db.call(lambda conn: backup_table.delete(conn, backup.id))
        await trio.to_thread.run_sync(files.remove_quietly, self.archive_path(backup))

    async def delete(self, record: ServerRecord, backup_id: int, *, actor: Actor) -> Backup:
        backup = await self.get(record, backup_id)
        if (running := self.jobs.progress(record.name)) is not None and running.id == backup_id:
            raise Conflict(f"backup {backup_id} is being restored")
        await self._remove(backup)
        await self._audit.record_done(
            "server", f"backup {backup.name} deleted", actor=actor, session=record.name
        )
        return backup

    async def restore(self, record: ServerRecord, backup_id: int, *, actor: Actor) -> Backup:
        """Replace the server's directory with the backup's contents (server at rest)."""
        backup = await self.get(record, backup_id)
        supervisor = self._manager.supervisor(record.name)
        with supervisor.hold_at_rest("restore"):
            job = self.jobs.begin(
                record.name, Progress(server=record.name, phase="restoring", id=backup.id)
            )

            async def work() -> Backup:
                job.set_phase("restoring")
                await restore_into(
                    self._manager.dirs.server(record.name),
                    self.archive_path(backup),
                    backup,
                    spec=supervisor.spec,
                    stamp=int(self._now()),
                    progress=job.progress_from_thread,
                    limiter=self._limiter,
                )
                with trio.CancelScope(shield=True):
                    await self._audit.record_done(
                        "server",
                        f"backup {backup.name} restored",
                        actor=actor,
                        session=record.name,
                    )
                return backup

            try:
                return await self.jobs.run(job, work)
            except LeosuiteError as exc:
                await self._audit.record_done(
                    "server",
                    f"backup {backup.name} not restored: {exc.message[:200]}",
                    actor=actor,
                    session=record.name,
                    level="warning",
                )
                raise

    async def forget_server(self, server_id: int) -> None:
        """A destroyed server's backups go with it (its rows cascade; here its files)."""
        path = self.root / str(server_id)
        await trio.to_thread.run_sync(lambda: shutil.rmtree(path, ignore_errors=True))
