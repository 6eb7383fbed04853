"""What the chat core tells, and asks, the other nodes of a cluster (no I/O).

A single daemon has no peers: :data:`NO_PEERS` answers every question with "nobody"
and ignores every event, so the core behaves exactly as it does without a cluster.
The chat relay (:mod:`leosuite.cluster.chat_relay`) is the other implementation: it
publishes this node's chat traffic and answers for the members connected elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

from .models import ChatEvent, Member, Session

__all__ = ["NO_PEERS", "NoPeers", "Peers", "Presence"]

#: A remote chat user logging in or out, as every local chat connection is told.
Presence = Callable[[Literal["login", "logout"], str], None]


class Peers(Protocol):
    def connected(self, member: Member) -> None:
        """A local chat member logged in."""

    def disconnected(self, member: Member) -> None:
        """A local chat member logged out (after it left its sessions)."""

    def sent(self, session: Session, event: ChatEvent) -> None:
        """A local member's join, leave or message to the whole session."""

    def nick_taken(self, nick: str) -> bool:
        """Whether a member connected to another node shows a look-alike name here."""

    def names(self, session: Session) -> list[str]:
        """The names, as shown here, of ``session``'s members on other nodes."""

    def connected_names(self) -> list[str]:
        """The names, as shown here, of every chat user connected to another node."""


class NoPeers:
    """One node: nobody elsewhere."""

    def connected(self, member: Member) -> None:
        pass

    def disconnected(self, member: Member) -> None:
        pass

    def sent(self, session: Session, event: ChatEvent) -> None:
        pass

    def nick_taken(self, nick: str) -> bool:
        return False

    def names(self, session: Session) -> list[str]:
        return []

    def connected_names(self) -> list[str]:
        return []


NO_PEERS: Peers = NoPeers()
