"""Operator tools that put a real leosuite daemon under faults and load.

``scripts/chaos`` (:mod:`.chaos`) drives a daemon with misbehaving servers and injects
faults at random (kill -9, SIGTERM, a double SIGTERM, reload, a full disk, descriptor
exhaustion, connection storms), checking after each one that no process escaped, no
server runs twice, no acknowledged write was lost, every console stays continuous or
announces its gap, the store is intact and the API answers promptly.
``scripts/soak`` (:mod:`.soak`) runs a mixed load for a long time and prints how the
daemon's resources move.

Everything here runs with the project's interpreter; none of it is part of the daemon.
"""
