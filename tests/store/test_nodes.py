"""The ``nodes`` and ``server_states`` tables, and the ``node`` each server belongs to."""

from __future__ import annotations

from leosuite.store import Database, nodes, servers
from leosuite.store.nodes import NodeRecord


def _node(name: str, at: float = 10.0) -> NodeRecord:
    return NodeRecord(
        name=name, public_url=f"http://{name}:8975", started_at=at, heartbeat_at=at, version="1"
    )


def test_nodes_register_and_heartbeat(db: Database) -> None:
    assert db.call_sync(nodes.list_all) == []
    db.call_sync(lambda c: nodes.register(c, _node("b.example")))
    db.call_sync(lambda c: nodes.register(c, _node("a")))
    assert [n.name for n in db.call_sync(nodes.list_all)] == ["a", "b.example"]
    assert db.call_sync(lambda c: nodes.heartbeat(c, "a", 20.0)) is True
    # A heartbeat never goes back (two writers with clocks apart).
    assert db.call_sync(lambda c: nodes.heartbeat(c, "a", 15.0)) is True
    got = db.call_sync(lambda c: nodes.get(c, "a"))
    assert got is not None
    assert got.heartbeat_at == 20.0
    assert got.started_at == 10.0
    assert db.call_sync(lambda c: nodes.heartbeat(c, "ghost", 20.0)) is False
    assert db.call_sync(lambda c: nodes.get(c, "ghost")) is None
    db.call_sync(lambda c: nodes.mark_stopped(c, "a", 25.0))
    stopped = db.call_sync(lambda c: nodes.get(c, "a"))
    assert stopped is not None
    assert stopped.stopped_at == 25.0
    # Registering again (a restart) replaces the row.
    db.call_sync(lambda c: nodes.register(c, _node("a", 30.0)))
    again = db.call_sync(lambda c: nodes.get(c, "a"))
    assert again == _node("a", 30.0)


def test_servers_belong_to_a_node(db: Database) -> None:
    old = db.call_sync(lambda c: servers.create(c, name="old", type="t", settings={}, created_at=0))
    assert old.node == ""
    made = db.call_sync(
        lambda c: servers.create(c, name="mc", type="t", settings={}, created_at=0, node="b")
    )
    assert made.node == "b"
    assert db.call_sync(lambda c: servers.get_by_name(c, "mc")) == made
    # The first node that claims takes the servers of no node; a second one gets none.
    assert db.call_sync(lambda c: servers.claim_unassigned(c, "a")) == ["old"]
    assert db.call_sync(lambda c: servers.claim_unassigned(c, "b")) == []
    by_name = {s.name: s.node for s in db.call_sync(servers.list_all)}
    assert by_name == {"old": "a", "mc": "b"}


def test_server_states(db: Database) -> None:
    for name, node in (("mc", "b"), ("web", "a")):
        db.call_sync(
            lambda c, n=name, o=node: servers.create(  # type: ignore[misc]
                c, name=n, type="t", settings={}, created_at=0, node=o
            )
        )
    db.call_sync(
        lambda c: nodes.set_server_state(c, "mc", node="b", state="starting", detail="", at=1.0)
    )
    db.call_sync(
        lambda c: nodes.set_server_state(c, "mc", node="b", state="running", detail="up", at=2.0)
    )
    db.call_sync(
        lambda c: nodes.set_server_state(c, "web", node="a", state="stopped", detail="", at=3.0)
    )
    # A server that does not exist is ignored.
    db.call_sync(
        lambda c: nodes.set_server_state(c, "ghost", node="a", state="running", detail="", at=3.0)
    )
    states = db.call_sync(nodes.server_states)
    assert set(states) == {"mc", "web"}
    assert states["mc"].state == "running"
    assert states["mc"].detail == "up"
    assert states["mc"].updated_at == 2.0
    assert set(db.call_sync(lambda c: nodes.server_states(c, "b"))) == {"mc"}
    # The state goes with its server.
    db.call_sync(lambda c: servers.delete(c, "mc"))
    assert set(db.call_sync(nodes.server_states)) == {"web"}
