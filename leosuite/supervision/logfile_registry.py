"""Every log file followed so far, by server id and path.

A follower's indexes live as long as it stays in the registry (a new server under an
old name has a new id). Each server keeps at most :data:`MAX_FOLLOWERS` followers: past
that, the least recently used ones nobody uses are dropped (a later reader of such a
file starts again at index 0 of its file as it then is). The followers of a server that
is gone are closed (waking their waiters) as soon as the registry learns it.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from .file_paths import Parts
from .log_files import MAX_LOG_FILES
from .logfile_follow import LogFollower

__all__ = ["MAX_FOLLOWERS", "LogFollowers"]

#: The most followers one server keeps while nobody uses the least recent ones.
MAX_FOLLOWERS = 2 * MAX_LOG_FILES


class LogFollowers:
    """The followers, least recently used first."""

    def __init__(self, *, max_followers: int = MAX_FOLLOWERS) -> None:
        self._max = max_followers
        self._followers: OrderedDict[tuple[int, Parts], LogFollower] = OrderedDict()

    def get(self, server_id: int, root: Path, parts: Parts) -> LogFollower:
        key = (server_id, parts)
        follower = self._followers.get(key)
        if follower is None:
            follower = self._followers[key] = LogFollower(root, parts)
            self._evict(server_id)
        else:
            self._followers.move_to_end(key)
        return follower

    def known(self, server_id: int, parts: Parts) -> bool:
        """Whether ``parts`` of ``server_id`` is followed already."""
        return (server_id, parts) in self._followers

    def _evict(self, server_id: int) -> None:
        mine = [k for k in self._followers if k[0] == server_id]
        excess = len(mine) - self._max
        for key in mine:
            if excess <= 0:
                return
            if self._followers[key].statistics().users == 0:
                self._followers.pop(key).close()
                excess -= 1

    def forget(self, keep: set[int]) -> None:
        """Close and drop the followers of every server not in ``keep``."""
        for key in [k for k in self._followers if k[0] not in keep]:
            self._followers.pop(key).close()

    def forget_server(self, server_id: int) -> None:
        """Close and drop the followers of the server ``server_id`` (it is gone)."""
        for key in [k for k in self._followers if k[0] == server_id]:
            self._followers.pop(key).close()

    def count(self, server_id: int) -> int:
        """How many followers ``server_id`` has."""
        return sum(1 for k in self._followers if k[0] == server_id)

    def watching(self) -> int:
        """How many followers hold an inotify instance now."""
        return sum(1 for f in self._followers.values() if f.statistics().watching)
