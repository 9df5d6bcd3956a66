"""Where providers' returns come from: drop folders and SFTP servers, configured per provider in TOML.

``sources.toml`` (path from ``CJMONITOR_SOURCES``; without one, the home's drop folder
is the only source and takes every provider)::

    [[source]]
    name = "drop"
    kind = "drop_folder"
    path = "var/drop"              # relative to CJMONITOR_HOME, or absolute
    providers = ["*"]              # "*" = any configured provider

    [[source]]
    name = "northstar-sftp"
    kind = "sftp"
    host = "sftp.northstar.example"
    port = 22
    user = "cjmonitor"
    key_file = "/etc/cjmonitor/keys/northstar"      # private key; never in the repository
    known_hosts = "/etc/cjmonitor/known_hosts"      # the server's host key must be listed here
    remote_path = "/outbox"
    providers = ["northstar-rehab"]

SFTP files are copied into ``var/inbox/<source>/`` (keeping the server's modification
time as the time received) and then landed like any other file. Names are checked
before anything is written locally: a name that could escape the inbox is refused.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from contracts.errors import SourceConfigError as ConfigError

log = logging.getLogger(__name__)

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


@dataclass(frozen=True)
class Source:
    name: str
    kind: str  # drop_folder, sftp
    providers: tuple[str, ...] = ("*",)
    path: Path | None = None
    host: str | None = None
    port: int = 22
    user: str | None = None
    key_file: Path | None = None
    known_hosts: Path | None = None
    remote_path: str = "."
    timeout_s: float = 30.0
    retries: int = 3
    extra: dict = field(default_factory=dict)

    def accepts(self, provider_id: str) -> bool:
        return "*" in self.providers or provider_id in self.providers


@dataclass(frozen=True)
class Fetched:
    path: Path
    remote_name: str


@dataclass(frozen=True)
class Refused:
    remote_name: str
    reason: str


def load_sources(path: Path | None, home: Path, default_drop: Path) -> list[Source]:
    """Read and check the sources file; every problem names the file, the source and the key."""
    if path is None or not path.exists():
        if path is not None and os.environ.get("CJMONITOR_SOURCES"):
            raise ConfigError(f"sources file {path} (CJMONITOR_SOURCES) does not exist")
        return [Source(name="drop", kind="drop_folder", path=default_drop)]
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    if not data:  # only comments (the file `cjmonitor init` writes): no sources configured yet
        return [Source(name="drop", kind="drop_folder", path=default_drop)]
    entries = data.get("source")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: no [[source]] tables; add at least one drop_folder or sftp source")
    sources, names = [], set()
    for index, entry in enumerate(entries, start=1):
        where = f"{path}, source #{index}"
        name = entry.get("name")
        if not isinstance(name, str) or not SAFE_NAME.match(name):
            raise ConfigError(f"{where}: 'name' must be letters, digits, '-', '_' or '.', got {name!r}")
        if name in names:
            raise ConfigError(f"{where}: two sources are named {name!r}; names must be unique")
        names.add(name)
        where = f"{path}, source {name!r}"
        kind = entry.get("kind")
        providers = entry.get("providers", ["*"])
        if not isinstance(providers, list) or not all(isinstance(p, str) for p in providers) or not providers:
            raise ConfigError(f"{where}: 'providers' must be a list of provider ids, or [\"*\"]")
        unknown = set(entry) - {"name", "kind", "providers", "path", "host", "port", "user", "key_file",
                                "known_hosts", "remote_path", "timeout_s", "retries"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        if kind == "drop_folder":
            if "path" not in entry:
                raise ConfigError(f"{where}: a drop_folder source needs 'path'")
            folder = Path(entry["path"])
            sources.append(Source(name=name, kind=kind, providers=tuple(providers),
                                  path=folder if folder.is_absolute() else home / folder))
        elif kind == "sftp":
            for key in ("host", "user", "key_file", "known_hosts"):
                if not isinstance(entry.get(key), str) or not entry[key]:
                    raise ConfigError(f"{where}: an sftp source needs '{key}'")
            port = entry.get("port", 22)
            if not isinstance(port, int) or not 0 < port < 65536:
                raise ConfigError(f"{where}: 'port' must be a number from 1 to 65535, got {port!r}")
            sources.append(Source(
                name=name, kind=kind, providers=tuple(providers), host=entry["host"], port=port,
                user=entry["user"], key_file=Path(entry["key_file"]), known_hosts=Path(entry["known_hosts"]),
                remote_path=str(entry.get("remote_path", ".")), timeout_s=float(entry.get("timeout_s", 30)),
                retries=int(entry.get("retries", 3)),
            ))
        else:
            raise ConfigError(f"{where}: 'kind' must be \"drop_folder\" or \"sftp\", got {kind!r}")
    return sources


def list_drop_folder(source: Source) -> list[Path]:
    folder = source.path
    if folder is None or not folder.is_dir():
        raise ConfigError(f"drop folder {folder} of source {source.name!r} does not exist: create it or fix the sources file")
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".part")]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def fetch_sftp(source: Source, inbox: Path) -> tuple[list[Fetched], list[Refused]]:
    """Copy new files from the SFTP server into ``inbox`` (retrying with backoff); return what came and what was refused."""
    import paramiko

    attempt = 0
    while True:
        attempt += 1
        try:
            return _fetch_once(source, inbox)
        except (paramiko.AuthenticationException, paramiko.BadHostKeyException) as exc:
            raise ConfigError(f"SFTP source {source.name!r} ({source.host}:{source.port}): {exc}; "
                              "check the user, key file and known_hosts entry") from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            error = exc
        if attempt > source.retries:
            raise ConfigError(f"SFTP source {source.name!r} ({source.host}:{source.port}) failed after "
                              f"{attempt} attempts: {type(error).__name__}: {error}") from None
        delay = min(60.0, 2.0 ** (attempt - 1))
        log.warning("SFTP source %s: attempt %d failed (%s); retrying in %.0f s", source.name, attempt, error, delay)
        time.sleep(delay)


def _fetch_once(source: Source, inbox: Path) -> tuple[list[Fetched], list[Refused]]:
    import paramiko

    if not source.known_hosts.is_file():
        raise ConfigError(f"known_hosts file {source.known_hosts} of SFTP source {source.name!r} does not exist")
    if not source.key_file.is_file():
        raise ConfigError(f"key file {source.key_file} of SFTP source {source.name!r} does not exist")
    inbox.mkdir(parents=True, exist_ok=True)
    client = paramiko.SSHClient()
    client.load_host_keys(str(source.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    fetched, refused = [], []
    try:
        client.connect(source.host, port=source.port, username=source.user, key_filename=str(source.key_file),
                       timeout=source.timeout_s, banner_timeout=source.timeout_s, auth_timeout=source.timeout_s,
                       allow_agent=False, look_for_keys=False)
        sftp = client.open_sftp()
        for entry in sorted(sftp.listdir_attr(source.remote_path), key=lambda e: (e.st_mtime or 0, e.filename)):
            if not stat.S_ISREG(entry.st_mode or 0):
                continue
            name = entry.filename
            if not SAFE_NAME.match(name) or ".." in name:
                refused.append(Refused(name, "unsafe file name: only letters, digits, '.', '-' and '_' are accepted"))
                continue
            local = inbox / name
            if local.exists() and local.stat().st_size == entry.st_size and int(local.stat().st_mtime) == int(entry.st_mtime or 0):
                fetched.append(Fetched(local, name))
                continue
            partial = inbox / f".{name}.part"
            sftp.get(f"{source.remote_path.rstrip('/')}/{name}", str(partial))
            os.utime(partial, (entry.st_atime or entry.st_mtime, entry.st_mtime))
            partial.replace(local)
            fetched.append(Fetched(local, name))
        sftp.close()
    finally:
        client.close()
    log.info("SFTP source %s: %d files present, %d refused", source.name, len(fetched), len(refused))
    return fetched, refused
