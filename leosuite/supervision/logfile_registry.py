"""Every log file followed so far, by server id and path.

A follower's indexes live as long as it stays in the registry (a new server under an
old name has a new id). Each server keeps at most :data:`MAX_FOLLOWERS` followers: past
that, the least recently used ones nobody uses are dropped (a later reader of such a
file starts again at index 0 of its file as it then is), and while all of them are in
use a new file is refused. The followers of a server that is gone are closed (waking
their waiters) as soon as the registry learns it: the manager tells it when it destroys
one. Every follower's file I/O runs in the registry's one
capacity limiter, and its directory is watched by the daemon's one inotify watch.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import trio

from ..errors import Conflict
from .console_watch import ConsoleWatch
from .file_paths import Parts
from .log_files import MAX_LOG_FILES
from .logfile_follow import LogFollower

__all__ = ["MAX_FOLLOWERS", "LogFollowers"]

#: The most followers one server keeps while nobody uses the least recent ones.
MAX_FOLLOWERS = 2 * MAX_LOG_FILES


class LogFollowers:
    """The followers, least recently used first."""

    def __init__(
        self,
        *,
        max_followers: int = MAX_FOLLOWERS,
        threads: int = 4,
        watch: ConsoleWatch | None = None,
    ) -> None:
        self._max = max_followers
        self._followers: OrderedDict[tuple[int, Parts], LogFollower] = OrderedDict()
        #: The worker threads every look at a log file (open, stat, read, list) takes.
        self.threads = trio.CapacityLimiter(threads)
        self._watch = watch

    def get(self, server_id: int, root: Path, parts: Parts) -> LogFollower:
        """The follower of ``parts``; Conflict when the server has :data:`MAX_FOLLOWERS`
        others that are all in use (the descriptors they hold stay bounded)."""
        key = (server_id, parts)
        follower = self._followers.get(key)
        if follower is None:
            if self._evict(server_id, room=1) > 0:
                raise Conflict(
                    f"{self._max} log files of this server are read at once: try again later",
                    field="file",
                )
            follower = LogFollower(root, parts, threads=self.threads, watch=self._watch)
            self._followers[key] = follower
        else:
            self._followers.move_to_end(key)
        return follower

    def known(self, server_id: int, parts: Parts) -> bool:
        """Whether ``parts`` of ``server_id`` is followed already."""
        return (server_id, parts) in self._followers

    def _evict(self, server_id: int, room: int = 0) -> int:
        """Drop the least recently used followers nobody uses until ``room`` more fit;
        how many more are still too many."""
        mine = [k for k in self._followers if k[0] == server_id]
        excess = len(mine) + room - self._max
        for key in mine:
            if excess <= 0:
                break
            if self._followers[key].statistics().users == 0:
                self._followers.pop(key).close()
                excess -= 1
        return excess

    def forget_server(self, server_id: int, reason: str = "this server is gone") -> None:
        """Close and drop the followers of the server ``server_id`` (it is gone): their
        waiters wake with ``reason``."""
        for key in [k for k in self._followers if k[0] == server_id]:
            self._followers.pop(key).close(reason)

    def count(self, server_id: int) -> int:
        """How many followers ``server_id`` has."""
        return sum(1 for k in self._followers if k[0] == server_id)

    def watching(self) -> int:
        """How many followers wait for a change now (watched, or polled)."""
        return sum(1 for f in self._followers.values() if f.statistics().watching)
