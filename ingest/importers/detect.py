"""What a path given to `chatchannels import` is, judged by its content, never by its name.

People hand over whatever they found on an old disk: a renamed export, a `main.db` copied as
`backup.sqlite`, the `chatsync` cache that sits beside it, a Skype 8 database. Each is either
one of the three forms we import or refused in one line that says what it is, so the user
knows what to look for instead.
"""

from __future__ import annotations

import sqlite3
import tarfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import ijson

EXPORT_TAR = "export-tar"
EXPORT_JSON = "export-json"
MAINDB = "maindb"

DESCRIPTIONS = {
    EXPORT_TAR: "Skype export archive (.tar with messages.json)",
    EXPORT_JSON: "Skype export messages.json",
    MAINDB: "Skype classic main.db",
}

_SNIFF_BYTES = 1 << 20
_EXPORT_KEYS = {"userId", "exportDate", "conversations"}


@dataclass(frozen=True)
class Importable:
    path: Path
    kind: str

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.kind]


@dataclass(frozen=True)
class Refusal:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: not imported: {self.reason}"


def detect(path: Path) -> list[Importable | Refusal]:
    """The importable files at `path` (a file, or a profile folder), or why it is refused."""
    path = Path(path)
    if path.is_dir():
        found: list[Importable | Refusal] = [
            kind
            for child in sorted(path.iterdir())
            if child.is_file()
            for kind in [sniff(child)]
            if isinstance(kind, Importable)
        ]
        if not found:
            return [Refusal(path, "a folder with no Skype main.db or export in it")]
        return found
    if not path.exists():
        return [Refusal(path, "no such file")]
    return [sniff(path)]


def sniff(path: Path) -> Importable | Refusal:
    try:
        with path.open("rb") as fh:
            head = fh.read(1024)
    except OSError as exc:
        return Refusal(path, f"cannot be read ({exc.strerror or exc})")
    if not head:
        return Refusal(path, "an empty file")
    if head.startswith(b"sCdB"):
        return Refusal(
            path,
            "a Skype chatsync .dat file (the sync cache beside main.db, not a history we "
            "import); import the profile's main.db instead",
        )
    if head.startswith(b"%PDF"):
        return Refusal(path, "a PDF document")
    if head.startswith(b"SQLite format 3\0"):
        return _sniff_sqlite(path)
    if head.startswith(b"\x1f\x8b"):
        return Refusal(path, "a gzip-compressed file; Skype exports are plain .tar, unpack it")
    if head.startswith(b"PK\x03\x04"):
        return Refusal(path, "a ZIP archive; Skype exports are plain .tar, unpack it")
    if (len(head) >= 262 and head[257:262] == b"ustar") or _is_tar(path):
        return _sniff_tar(path)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"{", b"["):
        return _sniff_json(path)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return Refusal(path, f"unknown binary data (first bytes {head[:8].hex(' ')})")
    return Refusal(path, "a text file, not a Skype export or database")


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def sqlite_uri(path: Path) -> str:
    """Read-only and immutable: we never write to, lock or journal a user's original file."""
    return f"file:{quote(str(Path(path).absolute()))}?mode=ro&immutable=1"


def _sniff_sqlite(path: Path) -> Importable | Refusal:
    try:
        db = sqlite3.connect(sqlite_uri(path), uri=True)
        try:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        return Refusal(path, f"a SQLite file whose schema cannot be read ({exc})")
    if "Messages" in tables:
        return Importable(path, MAINDB)
    if "messagesv12" in tables:
        return Refusal(
            path,
            "a Skype 8 database (s4l-*.db); its history is not stored there in full: "
            "import Skype's export (.tar) of that account instead",
        )
    listed = ", ".join(sorted(tables)[:8]) or "none"
    return Refusal(path, f"a SQLite database without a Skype Messages table (tables: {listed})")


def _sniff_tar(path: Path) -> Importable | Refusal:
    names: list[str] = []
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if member.name.lstrip("./") == "messages.json":
                    return Importable(path, EXPORT_TAR)
                names.append(member.name)
    except (tarfile.TarError, OSError) as exc:
        return Refusal(path, f"a tar archive that cannot be read ({exc}) before a messages.json")
    listed = ", ".join(names[:5]) or "none"
    return Refusal(path, f"a tar archive without messages.json (members: {listed})")


def _sniff_json(path: Path) -> Importable | Refusal:
    keys: list[str] = []
    with path.open("rb") as fh:
        try:
            for prefix, event, value in ijson.parse(fh):
                if prefix == "" and event == "start_array":
                    return Refusal(path, "a JSON array, not a Skype export")
                if prefix == "" and event == "map_key":
                    keys.append(value)
                    if value == "conversations" or {"userId", "exportDate"} <= set(keys):
                        return Importable(path, EXPORT_JSON)
                if fh.tell() > _SNIFF_BYTES:
                    break
        except ijson.JSONError as exc:
            return Refusal(path, f"not valid JSON ({_short(exc)})")
    listed = ", ".join(keys[:8]) or "none"
    return Refusal(
        path,
        f"a JSON object that is not a Skype export (top-level keys: {listed}; an "
        f"export has {', '.join(sorted(_EXPORT_KEYS))})",
    )


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
