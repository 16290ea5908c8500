"""One-time sign-in codes for the dashboard in the embedded default.

``lmrpc ui`` writes a code into the data dir and prints a link holding it; the page trades
it once for a short-lived read-only token (``POST /ui/session``). Only a hash of the code
is on disk, and redeeming unlinks the file: of several processes racing with the same
code, exactly one unlink succeeds, so a leaked link (terminal scrollback, browser history)
is worthless once used or after ``CODE_TTL_S``.
"""

import contextlib
import hashlib
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from lmrpc.identity import PREFIX
from lmrpc.ui.lifetimes import CODE_TTL_S, SESSION_TTL_S

CODE_DIR = "ui-sign-in"
#: What the dashboard reads; a sign-in link never grants more.
READ_ONLY_PERMISSIONS = [
    PREFIX + permission
    for permission in ("feature:read", "job:read", "status:read", "config:read", "product:read")
]
_CODE = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Grant:
    """What a redeemed code entitles to."""

    organization: str | None
    session_ttl: int


def issue(
    data_dir: Path,
    *,
    organization: str | None = None,
    session_ttl: int = SESSION_TTL_S,
    valid_for: int = CODE_TTL_S,
) -> str:
    """A new code, valid for ``valid_for`` seconds and one use."""
    directory = data_dir / CODE_DIR
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _forget_expired(directory)
    code = secrets.token_urlsafe(32)
    record = {
        "expires_at": time.time() + valid_for,
        "organization": organization,
        "session_ttl": session_ttl,
    }
    descriptor = os.open(_path(directory, code), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(record, handle)
    return code


def redeem(data_dir: Path, code: str) -> Grant | None:
    """The code's grant, once: None when it is malformed, unknown, used or expired."""
    if not _CODE.fullmatch(code):
        return None
    path = _path(data_dir / CODE_DIR, code)
    try:
        text = path.read_text()
        path.unlink()  # the one winner among racing redeemers
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text)
        if record["expires_at"] < time.time():
            return None
        return Grant(record["organization"], int(record["session_ttl"]))
    except (ValueError, KeyError, TypeError):
        return None


def _path(directory: Path, code: str) -> Path:
    return directory / hashlib.sha256(code.encode()).hexdigest()


def _forget_expired(directory: Path) -> None:
    now = time.time()
    for path in directory.iterdir():
        with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
            if json.loads(path.read_text())["expires_at"] < now:
                path.unlink()
