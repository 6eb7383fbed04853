"""OpenPGP room payloads: roundtrip, interoperability with real gpg both ways, errors."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from leosuite.community.crypto import (
    PayloadError,
    decrypt_payload,
    encrypt_payload,
    is_plausible_payload,
    new_syskey,
    system_payload,
)
from leosuite.errors import InvalidInput

GPG = shutil.which("gpg")


@pytest.fixture
def gnupghome(tmp_path: Path) -> Iterator[Path]:
    """A private GNUPGHOME; the gpg-agent gpg starts there is stopped afterwards."""
    if GPG is None:
        pytest.skip("gpg is not installed (apt-get install gnupg): cannot check interoperability")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    yield home
    subprocess.run(
        ["gpgconf", "--kill", "all"],
        env={**os.environ, "GNUPGHOME": str(home)},
        capture_output=True,
        check=False,
        timeout=30,
    )


def run_gpg(home: Path, passphrase: str, *args: str, data: bytes = b"") -> CompletedProcess[bytes]:
    """Run gpg in batch mode, the passphrase on fd 0 followed by *data*."""
    assert GPG is not None
    return subprocess.run(
        [
            GPG,
            "--homedir",
            str(home),
            "--batch",
            "--no-tty",
            "--pinentry-mode",
            "loopback",
            "--no-symkey-cache",
            "--passphrase-fd",
            "0",
            *args,
        ],
        input=passphrase.encode() + b"\n" + data,
        capture_output=True,
        check=False,
        timeout=60,
    )


def gpg(home: Path, passphrase: str, *args: str, data: bytes = b"") -> bytes:
    """Like :func:`run_gpg`, failing the test unless gpg succeeds; returns its output."""
    done = run_gpg(home, passphrase, *args, data=data)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


#: For messages gpg makes only as test input: a cheap S2K (gpg's default costs ~1 s).
CHEAP = ("--s2k-count", "65536")


def test_roundtrip_keeps_the_message() -> None:
    key = new_syskey()
    message = {"user": "ann", "text": 'héllo, "world" \u2603', "verb": "say"}
    payload = encrypt_payload(key, message)
    assert decrypt_payload(key, payload) == message


def test_payload_is_one_line_of_base64_of_a_binary_openpgp_message() -> None:
    payload = encrypt_payload("pw", {"user": "ann", "text": "hi", "verb": "say"})
    assert "\n" not in payload
    packet = base64.b64decode(payload, validate=True)
    # A binary OpenPGP packet header (high bit set), not "-----BEGIN PGP MESSAGE-----".
    assert packet[0] & 0x80
    assert not packet.startswith(b"-----BEGIN")


def test_each_encryption_is_fresh() -> None:
    message = {"user": "ann", "text": "same", "verb": "say"}
    assert encrypt_payload("pw", message) != encrypt_payload("pw", message)


def test_system_payload_decrypts_to_the_system_message() -> None:
    key = new_syskey()
    payload = system_payload(key, "ALERT: User bob tried to invite SYSTEM", "sysalert")
    assert decrypt_payload(key, payload) == {
        "user": "SYSTEM",
        "text": "ALERT: User bob tried to invite SYSTEM",
        "verb": "sysalert",
    }
    assert decrypt_payload(key, system_payload(key, "User bob joined the room"))["verb"] == (
        "sysinfo"
    )


def test_syskeys_are_strong_and_distinct() -> None:
    keys = {new_syskey() for _ in range(50)}
    assert len(keys) == 50
    assert all(len(k) >= 32 for k in keys)


def test_gpg_decrypts_a_system_payload(gnupghome: Path) -> None:
    key = new_syskey()
    payload = system_payload(key, "User ann joined the room \u00e9", "syswarn")
    plaintext = gpg(gnupghome, key, "--decrypt", data=base64.b64decode(payload))
    assert json.loads(plaintext) == {
        "user": "SYSTEM",
        "text": "User ann joined the room \u00e9",
        "verb": "syswarn",
    }
    # ASCII-only JSON: the origin's Python 2 client cannot handle anything else.
    assert plaintext.isascii()


def test_gpg_refuses_a_system_payload_with_the_wrong_key(gnupghome: Path) -> None:
    payload = system_payload(new_syskey(), "secret")
    done = run_gpg(gnupghome, "not-the-key", "--decrypt", data=base64.b64decode(payload))
    assert done.returncode != 0
    assert b"secret" not in done.stdout


def test_reads_gpg_armored_symmetric_output(gnupghome: Path) -> None:
    message = {"user": "bob", "text": "from gpg", "verb": "do"}
    armored = gpg(
        gnupghome, "room pass", *CHEAP, "--symmetric", "--armor", data=json.dumps(message).encode()
    )
    assert armored.startswith(b"-----BEGIN PGP MESSAGE-----")
    assert decrypt_payload("room pass", base64.b64encode(armored).decode()) == message


def test_reads_what_the_origin_client_sends(gnupghome: Path) -> None:
    # The origin client: python-gnupg symmetric AES256, armor=False, then Python 2
    # str.encode('base64') (MIME lines of 76 characters and a final newline).
    message = {"user": "bob", "text": "x" * 200, "verb": "say"}
    binary = gpg(
        gnupghome,
        "room pass",
        "--symmetric",
        "--cipher-algo",
        "AES256",
        data=json.dumps(message).encode(),
    )
    payload = base64.encodebytes(binary).decode()
    assert "\n" in payload.rstrip("\n")
    assert is_plausible_payload(payload, 10_000)
    assert decrypt_payload("room pass", payload) == message


def test_wrong_passphrase_raises() -> None:
    payload = encrypt_payload("right", {"user": "ann", "text": "hi", "verb": "say"})
    with pytest.raises(PayloadError, match="cannot decrypt") as info:
        decrypt_payload("wrong", payload)
    assert "Stack backtrace" not in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, InvalidInput)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("", "empty"),
        ("not base64 at all!", "not base64"),
        ("QUJD", "cannot decrypt"),  # base64 of b"ABC": not OpenPGP
        (base64.b64encode(b"\xc3\x2e\x04" + b"\x00" * 8).decode(), "cannot decrypt"),
        ("é", "not base64"),
    ],
)
def test_garbage_raises_value_error(payload: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decrypt_payload("pw", payload)


def test_decrypted_text_that_is_not_a_json_object_of_strings_raises(gnupghome: Path) -> None:
    for plaintext, reason in [
        (b"hello", "not JSON"),
        (b'["a"]', "not a JSON object"),
        (b'{"user": 1}', "not a JSON object of strings"),
    ]:
        armored = gpg(gnupghome, "pw", *CHEAP, "--symmetric", "--armor", data=plaintext)
        with pytest.raises(PayloadError, match=reason):
            decrypt_payload("pw", base64.b64encode(armored).decode())


@pytest.mark.parametrize(
    ("payload", "max_bytes", "plausible"),
    [
        ("QUJD", 100, True),
        ("QUI=", 100, True),
        ("QQ==", 100, True),
        ("QUJD\nREVG\n", 100, True),  # MIME-wrapped, as the origin client sends
        ("QUJD", 4, True),
        ("QUJDREVG", 7, False),  # over the limit
        ("", 100, False),
        ("\n", 100, False),
        ("QUJ", 100, False),  # bad length
        ("QQ=Q", 100, False),  # padding in the middle
        ("Q===", 100, False),
        ("QUJD!", 100, False),
        ("QU-_", 100, False),  # URL-safe alphabet is not what clients send
        ("QUJ\u00e9", 100, False),
        ('{"user":"ann","text":"plain","verb":"say"}', 100, False),
    ],
)
def test_is_plausible_payload(payload: str, max_bytes: int, plausible: bool) -> None:
    assert is_plausible_payload(payload, max_bytes) is plausible


def test_is_plausible_payload_accepts_real_payloads_and_refuses_non_strings() -> None:
    payload = encrypt_payload("pw", {"user": "ann", "text": "hi", "verb": "say"})
    assert is_plausible_payload(payload, len(payload))
    assert not is_plausible_payload(payload, len(payload) - 1)
    assert not is_plausible_payload(None, 100)  # type: ignore[arg-type]
    assert not is_plausible_payload(["QUJD"], 100)  # type: ignore[arg-type]


def test_encrypt_cost_is_bounded() -> None:
    # pysequoia's S2K (65011712 bytes hashed) costs ~45 ms here; the server pays it
    # for every SYSTEM message. Fail if it becomes an order of magnitude worse.
    rounds = 5
    start = time.perf_counter()
    for _ in range(rounds):
        system_payload("k" * 32, "User ann joined the room")
    per_call = (time.perf_counter() - start) / rounds
    assert per_call < 0.5, f"encrypt_payload takes {per_call * 1000:.0f} ms per call"
