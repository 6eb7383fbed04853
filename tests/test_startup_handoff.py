"""What a reloaded image takes over: inherited listening sockets (used only when they
still listen on the configured address) and the data directory's lock (kept, never
let go), and the handoff that names them."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from leosuite.errors import StartupError
from leosuite.reload import HANDOFF_ENV, Handoff, take_handoff
from leosuite.settings import Address
from leosuite.startup import DataDirLock, bind_listener, inherit_listener


def test_a_listening_socket_on_the_configured_address_is_taken_over() -> None:
    master = bind_listener(Address("127.0.0.1", 0), "http.listen")
    port = master.getsockname()[1]
    fd = master.detach()
    os.set_inheritable(fd, True)
    sock = inherit_listener(fd, Address("127.0.0.1", 0), "http.listen")
    assert sock is not None
    with sock:
        assert sock.fileno() == fd
        assert sock.getsockname() == ("127.0.0.1", port)
        assert not sock.get_inheritable()
        # A client connects to it as before.
        with socket.create_connection(("127.0.0.1", port)):
            pass
    again = bind_listener(Address("127.0.0.1", port), "http.listen")
    fd = again.detach()
    sock = inherit_listener(fd, Address("localhost", port), "http.listen")
    assert sock is not None
    sock.close()


def test_a_socket_on_another_address_is_closed() -> None:
    master = bind_listener(Address("127.0.0.1", 0), "http.listen")
    port = master.getsockname()[1]
    fd = master.detach()
    elsewhere = Address("127.0.0.1", port - 1 if port > 1024 else port + 1)
    assert inherit_listener(fd, elsewhere, "http.listen") is None
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)  # closed: the settings changed, the port is free again
    bind_listener(Address("127.0.0.1", port), "http.listen").close()


def test_what_is_not_a_listening_socket_is_left_alone(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "file", os.O_RDWR | os.O_CREAT)
    try:
        assert inherit_listener(fd, Address("127.0.0.1", 0), "http.listen") is None
        os.fstat(fd)  # still open
    finally:
        os.close(fd)
    with socket.socket() as unbound:
        assert inherit_listener(unbound.fileno(), Address("127.0.0.1", 0), "http.listen") is None
        unbound.getsockname()  # still open
    assert inherit_listener(9999, Address("127.0.0.1", 0), "http.listen") is None


def test_the_lock_is_kept_by_its_descriptor(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire()
    fd = first.fileno()
    os.set_inheritable(fd, True)
    taken = DataDirLock(tmp_path)
    assert taken.adopt(fd)
    assert not os.get_inheritable(fd)
    with pytest.raises(StartupError, match="in use by another leosuite"):
        DataDirLock(tmp_path).acquire()
    # Another file's descriptor is no lock of this directory.
    other = tmp_path / "other"
    other.mkdir()
    assert not DataDirLock(other).adopt(fd)
    taken.release()
    free = DataDirLock(tmp_path)
    free.acquire()
    free.release()


def test_the_handoff_is_taken_out_of_the_environment() -> None:
    handoff = Handoff(generation=3, lock=4, listeners={"http.listen": 5}, stop=True)
    environ = {HANDOFF_ENV: '{"generation":3,"lock":4,"listeners":{"http.listen":5},"stop":true}'}
    assert take_handoff(environ) == handoff
    assert environ == {}
    assert handoff.descriptors() == [4, 5]
    broken = {HANDOFF_ENV: "{not json", "OTHER": "x"}
    assert take_handoff(broken) is None
    assert broken == {"OTHER": "x"}
    assert take_handoff({}) is None
