"""The PII vault: placeholders for the model, encrypted originals for the journal.

`PiiVault` implements `bosun.tools.privacy.Privacy`. It masks text as it enters a run: each
detected value becomes ``<SHORT_n>`` (``<EMAIL_1>``, ``<CARD_2>``), numbered per type within the
run, and the original is kept as a `VaultEntry` whose ciphertext only this process's master key
opens. The entries travel in the run's journal, so the vault is the journal's, not a second store.

Keys. One 32-byte master key per deployment (`load_or_create_key`: a 0600 file, or base64 in the
configuration). Each run gets its own keys, derived with HKDF-SHA256 from the master key and the
run id: one for AES-256-GCM (the run id is also the associated data), one for HMAC-SHA256
fingerprints. A ciphertext copied into another run, edited, or read with another master key
fails authentication and raises `StoreError`; it never decrypts to something else.

Placeholder spoofing. Text that arrives already holding something shaped like a placeholder
(an e-mail that says ``reply to <EMAIL_1>``) would be indistinguishable from bosun's own, and a
tool allowed to receive e-mail addresses would be handed the real ``EMAIL_1``. So before
detection every placeholder-shaped token in incoming text is *neutralised*: its angle brackets
become ``‹`` and ``›`` (U+2039, U+203A), which `bosun.tools.privacy.PLACEHOLDER` never matches.
A reader still sees what was written; no reveal can be triggered by it. The replacement keeps
every offset, one code point for one. The cost: a placeholder that comes back in text that is
masked again (a tool echoing its arguments) reads ``‹EMAIL_1›`` from then on.

Fingerprints cover the entity type and the exact value, so the same value seen again in the
run (in any later input or tool output) gets the same placeholder without decrypting anything,
and a value detected as two different types gets two placeholders, each revealed only to tools
allowed that type.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import stat
from collections.abc import Collection, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bosun.errors import ConfigError, StoreError
from bosun.gateway.pii import PLACEHOLDER_NAMES, PiiDetector
from bosun.tools.privacy import PLACEHOLDER, VaultEntry, reveal_placeholders

__all__ = [
    "PiiVault",
    "VaultCipher",
    "decode_key",
    "load_or_create_key",
    "neutralize_placeholders",
]

KEY_BYTES: Final = 32
"""Length of the master key and of every derived key (AES-256, HMAC-SHA256)."""

_TOKEN_PREFIX: Final = "v1."
_NONCE_BYTES: Final = 12


def decode_key(text: str, *, what: str = "the PII vault key") -> bytes:
    """A master key written as base64 (standard or URL-safe alphabet) in the configuration;
    `what` names it in errors."""
    cleaned = "".join(text.split()).replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{what} is not valid base64") from exc
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"{what} must be {KEY_BYTES} bytes (44 base64 characters), got {len(key)} bytes"
        )
    return key


def load_or_create_key(
    path: Path, *, key_b64: str | None = None, what: str = "the PII vault key"
) -> bytes:
    """The master key: `key_b64` when the configuration gives one, else the file at `path`,
    created (mode 0600, base64 text) if it does not exist. A file that group or others may
    read is refused: anyone who can read it can read every run's PII (or, for the dashboard's
    session key, forge sessions). `what` names the key in errors."""
    if key_b64 is not None:
        return decode_key(key_b64, what=what)
    try:
        return _read_key_file(path, what)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Written under a private temporary name, then linked into place: a reader never sees a
    # half-written key, and of two processes creating it at once the second reads the first's.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)) + b"\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return _read_key_file(path, what)


def _read_key_file(path: Path, what: str) -> bytes:
    with path.open("rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{what} file {path} is readable by other users "
                f"(mode {stat.filemode(mode)}); run `chmod 600 {path}`"
            )
        data = file.read()
    if len(data) == KEY_BYTES:
        return data  # raw bytes: 32 bytes of base64 would decode to 24
    try:
        return decode_key(data.decode("ascii"), what=what)
    except (UnicodeDecodeError, ConfigError) as exc:
        raise ConfigError(f"{what} file {path} must hold {KEY_BYTES} bytes as base64") from exc


class VaultCipher:
    """Per-run authenticated encryption and fingerprints under one master key."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise ConfigError(f"the PII vault key must be {KEY_BYTES} bytes")
        self._master = bytes(master_key)
        # Bounded: keys of finished runs fall out; deriving again costs microseconds.
        self._keys = lru_cache(maxsize=4096)(self._derive)

    def _derive(self, run_id: str, purpose: str) -> bytes:
        return HKDF(
            algorithm=hashes.SHA256(),
            length=KEY_BYTES,
            salt=None,
            info=f"bosun-vault/{purpose}/{run_id}".encode(),
        ).derive(self._master)

    def encrypt(self, run_id: str, value: str) -> str:
        """`value` encrypted for `run_id` alone: ``v1.`` + URL-safe base64 (nonce, ciphertext)."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = AESGCM(self._keys(run_id, "enc")).encrypt(
            nonce, value.encode("utf-8", "surrogatepass"), run_id.encode("utf-8", "surrogatepass")
        )
        return _TOKEN_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, run_id: str, token: str) -> str:
        """The value `encrypt` sealed for `run_id`. Raises `StoreError` if the token was made
        for another run or under another key, or was changed."""
        if not token.startswith(_TOKEN_PREFIX):
            raise StoreError(f"not a PII vault ciphertext (run {run_id})")
        try:
            body = token[len(_TOKEN_PREFIX) :].encode("ascii")
            raw = base64.b64decode(body, altchars=b"-_", validate=True)
            nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
            plain = AESGCM(self._keys(run_id, "enc")).decrypt(
                nonce, sealed, run_id.encode("utf-8", "surrogatepass")
            )
        except (InvalidTag, ValueError, binascii.Error) as exc:
            raise StoreError(
                f"a PII vault entry of run {run_id} does not decrypt: it was changed, belongs "
                "to another run, or was written under another vault key"
            ) from exc
        return plain.decode("utf-8", "surrogatepass")

    def fingerprint(self, run_id: str, value: str) -> str:
        """A keyed hash of `value`, stable within `run_id`, unrelated across runs."""
        digest = hmac.new(
            self._keys(run_id, "fingerprint"),
            value.encode("utf-8", "surrogatepass"),
            hashlib.sha256,
        ).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def neutralize_placeholders(text: str) -> str:
    """`text` with every placeholder-shaped token made inert: ``<EMAIL_1>`` → ``‹EMAIL_1›``."""
    if "<" not in text:
        return text
    return PLACEHOLDER.sub(lambda m: f"\u2039{m.group(1)}_{m.group(2)}\u203a", text)


class PiiVault:
    """`Privacy` for bosun: detection by a `PiiDetector`, encryption by a `VaultCipher`."""

    def __init__(self, detector: PiiDetector, cipher: VaultCipher) -> None:
        self.detector = detector
        """Finds the values to mask."""
        self.cipher = cipher
        """Encrypts originals and fingerprints them, per run."""

    def mask(
        self, run_id: str, text: str, vault: Mapping[str, VaultEntry]
    ) -> tuple[str, list[VaultEntry]]:
        """`text` with placeholders for its PII, and the entries `vault` lacked (to journal).
        Placeholder-shaped text already in `text` is neutralised first (see module doc)."""
        safe = neutralize_placeholders(text)
        spans = self.detector.detect(safe)
        if not spans:
            return safe, []
        by_fingerprint = {entry.fingerprint: entry for entry in vault.values()}
        numbers = _last_numbers(vault)
        new: list[VaultEntry] = []
        parts: list[str] = []
        pos = 0
        for span in spans:
            fingerprint = self.cipher.fingerprint(run_id, f"{span.entity}\x00{span.text}")
            entry = by_fingerprint.get(fingerprint)
            if entry is None:
                short = PLACEHOLDER_NAMES.get(span.entity, span.entity)
                numbers[short] = numbers.get(short, 0) + 1
                entry = VaultEntry(
                    placeholder=f"<{short}_{numbers[short]}>",
                    entity=span.entity,
                    ciphertext=self.cipher.encrypt(run_id, span.text),
                    fingerprint=fingerprint,
                )
                by_fingerprint[fingerprint] = entry
                new.append(entry)
            parts.append(safe[pos : span.start])
            parts.append(entry.placeholder)
            pos = span.end
        parts.append(safe[pos:])
        return "".join(parts), new

    def reveal(self, run_id: str, entry: VaultEntry) -> str:
        """The original behind `entry`. Raises `StoreError` if it does not decrypt."""
        return self.cipher.decrypt(run_id, entry.ciphertext)

    def resolve(
        self,
        run_id: str,
        text: str,
        vault: Mapping[str, VaultEntry],
        allowed: Collection[str],
    ) -> str:
        """`text` with the placeholders of the `allowed` entity types swapped back; others, and
        placeholder-shaped text not in `vault`, stay as they are."""
        resolved: str = reveal_placeholders(
            text, vault, allowed, lambda entry: self.reveal(run_id, entry)
        )
        return resolved


_NUMBERED: Final = re.compile(r"<([A-Z][A-Z_]*)_(\d+)>")


def _last_numbers(vault: Mapping[str, VaultEntry]) -> dict[str, int]:
    """The highest number used so far for each placeholder name in `vault`."""
    numbers: dict[str, int] = {}
    for entry in vault.values():
        match = _NUMBERED.fullmatch(entry.placeholder)
        if match:
            name, n = match.group(1), int(match.group(2))
            numbers[name] = max(numbers.get(name, 0), n)
    return numbers
