"""Settings from environment variables, with defaults that work out of the box.

``CJMONITOR_HOME`` (default: the current directory) holds ``var/`` (the SQLite
database, drop folder, raw archive, quarantine, the demo world's ``truth.json``)
and ``out/`` (every document), so that two homes never mix.

| variable | default | meaning |
|---|---|---|
| ``CJMONITOR_HOME`` | current directory | root of ``var/`` and ``out/`` |
| ``CJMONITOR_DATABASE_URL`` | ``sqlite:///$HOME/var/cjmonitor.db`` | SQLAlchemy URL of the application database |
| ``CJMONITOR_DROP_DIR`` | ``$HOME/var/drop`` | the drop folder providers' returns arrive in |
| ``CJMONITOR_PSEUDONYMISATION_KEY`` | a random key kept in ``$HOME/var/pseudonymisation.key`` | keyed-hash secret for person identifiers; never stored in the database |
| ``CJMONITOR_ALPHA`` | ``0.05`` | significance level for verdicts |
| ``CJMONITOR_SOURCES`` | ``$HOME/sources.toml`` if present | per-provider sources (drop folders, SFTP); without it the drop folder takes every provider |
| ``CJMONITOR_MAX_FILE_MB`` | ``200`` | returns larger than this are refused before they are read |
| ``CJMONITOR_SUPPRESSION_THRESHOLD`` | ``5`` | counts from 1 to this minus 1 are suppressed in published tables |
| ``CJMONITOR_PDF_ENGINE`` | ``auto`` | ``chromium``, ``weasyprint``, or ``auto`` (Chromium when installed); read by ``reports.pdf`` |
| ``CJMONITOR_CHROMIUM`` | ``chromium`` on the PATH | the Chromium executable that prints PDFs; read by ``reports.pdf`` |
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cjmonitor.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    drop_dir: Path
    alpha: float = 0.05
    sources_path: Path | None = None
    max_file_bytes: int = 200 * 1024 * 1024
    # Unit cost of one proven reoffence for the value view: an illustrative default, to be replaced by the
    # figure the commissioner's office uses (CJMONITOR_REOFFENCE_UNIT_COST_GBP).
    reoffence_unit_cost_gbp: float = 5000.0
    suppression_threshold: int = 5
    _key_override: str | None = field(default=None, repr=False)

    @property
    def var_dir(self) -> Path:
        return self.home / "var"

    @property
    def out_dir(self) -> Path:
        return self.home / "out"

    @property
    def raw_archive_dir(self) -> Path:
        return self.var_dir / "raw"

    @property
    def quarantine_dir(self) -> Path:
        return self.var_dir / "quarantine"

    @property
    def inbox_dir(self) -> Path:
        return self.var_dir / "inbox"

    @property
    def truth_path(self) -> Path:
        return self.var_dir / "truth.json"

    @property
    def threshold_cache_path(self) -> Path:
        """The shortfall rule's simulated thresholds (contracts.fairness.ThresholdStore): a cache, safe to delete."""
        return self.var_dir / "cache" / "cusum-thresholds.json"

    @property
    def key_path(self) -> Path:
        return self.var_dir / "pseudonymisation.key"

    def ensure_dirs(self) -> None:
        for path in (self.var_dir, self.out_dir, self.drop_dir, self.raw_archive_dir, self.quarantine_dir):
            path.mkdir(parents=True, exist_ok=True)

    def pseudonymisation_key(self) -> bytes:
        """The keyed-hash secret: from the environment, else a random key kept beside the database."""
        if self._key_override:
            return self._key_override.encode()
        if self.key_path.exists():
            return self.key_path.read_text().strip().encode()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        return key.encode()


def get_settings(home: str | os.PathLike[str] | None = None) -> Settings:
    """Read settings from the environment; ``home`` overrides ``CJMONITOR_HOME``."""
    home_path = Path(home or os.environ.get("CJMONITOR_HOME") or Path.cwd()).resolve()
    url = os.environ.get("CJMONITOR_DATABASE_URL") or f"sqlite:///{home_path / 'var' / 'cjmonitor.db'}"
    drop = Path(os.environ.get("CJMONITOR_DROP_DIR") or home_path / "var" / "drop")
    alpha_text = os.environ.get("CJMONITOR_ALPHA", "0.05")
    try:
        alpha = float(alpha_text)
    except ValueError:
        raise ConfigError(f"CJMONITOR_ALPHA must be a number such as 0.05, got {alpha_text!r}") from None
    if not 0 < alpha < 0.5:
        raise ConfigError(f"CJMONITOR_ALPHA must lie between 0 and 0.5, got {alpha}")
    sources = os.environ.get("CJMONITOR_SOURCES")
    max_mb_text = os.environ.get("CJMONITOR_MAX_FILE_MB", "200")
    try:
        max_mb = float(max_mb_text)
    except ValueError:
        raise ConfigError(f"CJMONITOR_MAX_FILE_MB must be a number of megabytes, got {max_mb_text!r}") from None
    if max_mb <= 0:
        raise ConfigError(f"CJMONITOR_MAX_FILE_MB must be positive, got {max_mb_text!r}")
    cost_text = os.environ.get("CJMONITOR_REOFFENCE_UNIT_COST_GBP", "5000")
    try:
        unit_cost = float(cost_text)
    except ValueError:
        raise ConfigError(f"CJMONITOR_REOFFENCE_UNIT_COST_GBP must be a number of pounds, got {cost_text!r}") from None
    if unit_cost < 0:
        raise ConfigError(f"CJMONITOR_REOFFENCE_UNIT_COST_GBP cannot be negative, got {cost_text!r}")
    threshold_text = os.environ.get("CJMONITOR_SUPPRESSION_THRESHOLD", "5")
    try:
        threshold = int(threshold_text)
    except ValueError:
        raise ConfigError(f"CJMONITOR_SUPPRESSION_THRESHOLD must be a whole number of people such as 5, "
                          f"got {threshold_text!r}") from None
    if threshold < 1:
        raise ConfigError(f"CJMONITOR_SUPPRESSION_THRESHOLD must be at least 1 (1 suppresses nothing), got {threshold}")
    return Settings(
        home=home_path,
        database_url=url,
        drop_dir=drop,
        alpha=alpha,
        sources_path=Path(sources) if sources else home_path / "sources.toml",
        max_file_bytes=int(max_mb * 1024 * 1024),
        reoffence_unit_cost_gbp=unit_cost,
        suppression_threshold=threshold,
        _key_override=os.environ.get("CJMONITOR_PSEUDONYMISATION_KEY"),
    )
