"""OpenPGP payloads of the encrypted rooms (seed 004).

A room message payload is a JSON object ``{"user", "text", "verb"}``, encrypted
symmetrically (OpenPGP, RFC 4880 SKESK + SEIPD) with a passphrase and then
base64-encoded. Clients encrypt with the room passphrase, which the server never
sees; the server's ``SYSTEM`` user encrypts with the room's ``syskey``, which it
generates per room and hands to joiners, so ``gpg --decrypt`` with that key reads
what the server says.

On-wire format: **base64 of the binary (unarmored) OpenPGP message**, on one line.
This is what the origin's own client and server exchange: in bentasker/LocalChat,
``client/LocalChatClient.py`` encrypts with python-gnupg
``gpg.encrypt(msg, None, passphrase=..., symmetric="AES256", armor=False)`` and sends
``crypted.data.encode('base64')``; it decrypts with
``gpg.decrypt(msg.decode("base64"), passphrase=key)``, using the ``syskey`` when the
sender is ``SYSTEM``; ``server/LocalChat.py`` ``encryptSysMsg`` does the same with
``armor=False``. The origin's base64 is MIME-style (lines of 76 characters, a final
newline); its decoder ignores line breaks, so we send one unwrapped line (which strict
decoders also accept) and accept wrapped input. gpg reads binary and armored input
alike, so :func:`decrypt_payload` accepts base64 of either.

The plaintext JSON is ASCII-only (``\\uXXXX`` escapes): the origin client is Python 2
and turns the decrypted text into a byte ``str``, which fails on non-ASCII.

The server never decrypts client payloads; :func:`is_plausible_payload` is the cheap
shape check it applies instead. :func:`decrypt_payload` is for tests and the CLI.

Cost: pysequoia derives the key with the strongest iterated-and-salted S2K
(65011712 bytes hashed), about 45 ms per encryption or decryption on one core,
**holding the GIL** throughout (a worker thread does not keep the event loop running).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from typing import Literal

import pysequoia

from ..errors import InvalidInput

__all__ = [
    "PayloadError",
    "PayloadVerb",
    "SystemVerb",
    "decrypt_payload",
    "encrypt_payload",
    "is_plausible_payload",
    "new_syskey",
    "system_payload",
]

SystemVerb = Literal["sysinfo", "syswarn", "sysalert"]
#: A SYSTEM verb, or ``say`` for text the server relays from the chat.
PayloadVerb = Literal["sysinfo", "syswarn", "sysalert", "say"]

#: Standard base64 alphabet with up to two ``=`` of padding (whitespace removed first).
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
#: What a base64 producer may put between characters (MIME line breaks, a final newline).
_WHITESPACE = re.compile(r"[ \t\r\n]+")


class PayloadError(InvalidInput, ValueError):
    """A payload that is not base64, not OpenPGP, not for this passphrase, or not
    a JSON object of strings."""


def new_syskey() -> str:
    """A fresh random passphrase for a room's SYSTEM messages (192 bits, URL-safe)."""
    return secrets.token_urlsafe(24)


def encrypt_payload(passphrase: str, message: dict[str, str]) -> str:
    """JSON-encode *message*, encrypt it with *passphrase*, return one base64 line."""
    plaintext = json.dumps(message, separators=(",", ":"), ensure_ascii=True)
    packet = pysequoia.encrypt(plaintext.encode("ascii"), passwords=[passphrase], armor=False)
    return base64.b64encode(packet).decode("ascii")


def system_payload(
    syskey: str, text: str, verb: PayloadVerb = "sysinfo", user: str = "SYSTEM"
) -> str:
    """The payload of a message the server writes (as SYSTEM, or relaying a chat line
    under the chat member's marked name), encrypted with the room's *syskey*."""
    return encrypt_payload(syskey, {"user": user, "text": text, "verb": verb})


def decrypt_payload(passphrase: str, payload: str) -> dict[str, str]:
    """Decrypt a payload made by :func:`encrypt_payload` or by a client.

    Accepts base64 of a binary or ASCII-armored OpenPGP message, with or without line
    breaks. Raises :class:`PayloadError` (a ``ValueError``) on anything else.
    """
    try:
        packet = base64.b64decode(_WHITESPACE.sub("", payload), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PayloadError("payload is not base64") from exc
    if not packet:
        raise PayloadError("payload is empty")
    try:
        decrypted = pysequoia.decrypt(packet, passwords=[passphrase])
    except RuntimeError as exc:
        raise PayloadError(f"cannot decrypt payload: {_first_line(exc)}") from exc
    plaintext = decrypted.bytes
    if plaintext is None:
        raise PayloadError("cannot decrypt payload: no content")
    try:
        message = json.loads(plaintext)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError("decrypted payload is not JSON") from exc
    if not isinstance(message, dict) or not all(isinstance(v, str) for v in message.values()):
        raise PayloadError("decrypted payload is not a JSON object of strings")
    return message


def is_plausible_payload(payload: str, max_bytes: int) -> bool:
    """Whether *payload* looks like a client's payload: non-empty base64 text (standard
    alphabet, line breaks allowed) of at most *max_bytes* bytes. Never decrypts."""
    if not isinstance(payload, str) or not payload or len(payload) > max_bytes:
        return False
    if not payload.isascii():
        return False
    compact = _WHITESPACE.sub("", payload)
    return bool(compact) and len(compact) % 4 == 0 and _BASE64.fullmatch(compact) is not None


def _first_line(exc: BaseException) -> str:
    """pysequoia's messages carry a Rust backtrace when RUST_BACKTRACE is set: keep the
    message only."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
