"""The stored system measures indexed once for the LCJB packs (``reports.lcjb``): the frame, each measure's
whole-area rows, the panel analysis of interdependencies and the pathway's store.

Kept per process while the table is unchanged (``_fingerprint``) and, with :func:`use_index_cache`, shared by the
processes of a home through ``var/cache``: each of the monthly DAG's rendering tasks is a process of its own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from pathlib import Path

import pandas as pd
from sqlmodel import Session, select

log = logging.getLogger(__name__)


class SystemIndex:
    """The stored system measures, read and indexed once: the frame (with breakdowns), each (agency, measure)'s
    whole-area rows in stored order, each measure's unit, and the panel analysis, computed on first use.

    Filtering the whole frame with ``==`` on its string columns cost about 0.1 s a filter; an LCJB pack made 36."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.area_set = set(frame["area_code"])
        self.areas = sorted(self.area_set)
        first = frame.drop_duplicates(["agency", "measure"])
        self.units = {(agency, measure): unit for agency, measure, unit
                      in first[["agency", "measure", "unit"]].itertuples(index=False, name=None)}
        whole = frame[frame["breakdown"] == ""]
        self.whole = {key: rows for key, rows in whole.groupby(["agency", "measure"], sort=False)}
        self._interdependencies = None
        self._interdependencies_error = None
        self._pathway_store = None
        self.cache_key: tuple | None = None  # set by system_index: what a shared copy is filed under

    def rows(self, agency: str, measure: str) -> pd.DataFrame:
        """The whole-area rows of one measure, every area and period, in the frame's order (empty if none)."""
        found = self.whole.get((agency, measure))
        return found if found is not None else self.frame.iloc[0:0]

    def pathway_store(self):
        """The monthly figures indexed for the pathway's sums (the same for every area's pack)."""
        from contracts.pathway import PathwayStore

        if self._pathway_store is None:
            self._pathway_store = PathwayStore(self.frame[self.frame["period_type"] == "month"])
        return self._pathway_store

    def interdependencies(self):
        """The panel analysis across every area (the same for every area's pack)."""
        from outcomes.errors import OutcomesError
        from outcomes.interdependence import analyse_interdependencies

        if self._interdependencies is None and self._interdependencies_error is None:
            whole = self.frame[(self.frame["breakdown"] == "") & (self.frame["period_type"] == "month")]
            try:
                self._interdependencies = analyse_interdependencies(whole, labels=labels())
            except OutcomesError as exc:  # e.g. too few areas: the same answer every time, so kept too
                self._interdependencies_error = exc
        if self._interdependencies_error is not None:
            raise self._interdependencies_error.with_traceback(None)
        return self._interdependencies


# One index per database, kept for the life of the process and checked against the stored table before each use
# (``_fingerprint``), so that a new or replaced system-measures return is read again, never served stale.
_INDEXES: dict[str, tuple[tuple, SystemIndex]] = {}
_MAX_INDEXES = 2


def _fingerprint(session: Session) -> tuple:
    """What changes whenever ``system_measure_value`` does: its row count, its highest id and its latest load time
    (figures are only ever inserted, each store with a new load time, or deleted)."""
    from sqlalchemy import func

    from contracts.models import SystemMeasureValue

    table = SystemMeasureValue.__table__
    row = session.execute(select(func.count(), func.max(table.c.id), func.max(table.c.loaded_at))
                          .select_from(table)).one()
    return tuple(str(v) for v in row)


def system_index(session: Session) -> SystemIndex:
    """The indexed system measures of ``session``'s database, read once per process while they are unchanged
    (and, with :func:`use_index_cache`, once across the processes of a run)."""
    from contracts.system import read_system_measures

    database = session.get_bind().url.render_as_string(hide_password=False)
    stamp = _fingerprint(session)
    cached = _INDEXES.get(database)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    key = _cache_key(session, stamp)
    index = _read_index_cache(key)
    if index is None:
        index = SystemIndex(read_system_measures(session, breakdowns=True))
    _INDEXES.pop(database, None)
    while len(_INDEXES) >= _MAX_INDEXES:
        _INDEXES.pop(next(iter(_INDEXES)))
    _INDEXES[database] = (stamp, index)
    index.cache_key = key
    return index


# The index shared by the processes of one home (each of the monthly DAG's rendering tasks is its own process, and
# at a quarter's end each built the same index and panel analysis again: about 2.9 CPU-s, 42 times on the default
# world). A cache, safe to delete; keyed by the database (without its password), the table's fingerprint, the code
# version and the source of the modules that build it, so that it is never served stale. It is a pickle the
# application itself wrote in the home's var/cache, trusted as the home's database is.
_CACHE_FILE: Path | None = None
_SAVED: set[tuple] = set()
_CACHE_MODULES = ("reports/system_index.py", "contracts/pathway.py", "outcomes/interdependence.py", "contracts/system.py")


def use_index_cache(directory: Path | None) -> None:
    """Read and write the indexed system measures in ``directory`` (the home's ``var/cache``); ``None`` stops."""
    global _CACHE_FILE
    _CACHE_FILE = None if directory is None else Path(directory) / "system-index.pickle"


def _cache_key(session: Session, stamp: tuple) -> tuple:
    from cjmonitor.state import code_version

    root = Path(__file__).resolve().parent.parent
    source = hashlib.sha256(b"".join((root / name).read_bytes() for name in _CACHE_MODULES)).hexdigest()
    return (session.get_bind().url.render_as_string(hide_password=True), stamp, code_version(), source)


def _stored_key(handle) -> tuple | None:
    """The key the cache file was written under: its first pickle, read without the index behind it."""
    key = pickle.load(handle)
    return key if isinstance(key, tuple) else None


def _read_index_cache(key: tuple) -> SystemIndex | None:
    if _CACHE_FILE is None or not _CACHE_FILE.exists():
        return None
    try:
        with _CACHE_FILE.open("rb") as handle:
            if _stored_key(handle) != key:
                return None
            index = pickle.load(handle)
    except Exception as exc:  # noqa: BLE001 - a damaged or incompatible cache is rebuilt, never trusted
        log.warning("ignoring the system-measures cache %s (%s): it is built again", _CACHE_FILE, exc)
        return None
    if not isinstance(index, SystemIndex):
        return None
    _SAVED.add(key)  # it is already there, with what its writer had computed
    return index


def save_index_cache() -> bool:
    """Write this process's index, with its panel analysis and pathway store computed, for the other processes of
    the home, unless the file already holds it; True if it wrote."""
    if _CACHE_FILE is None:
        return False
    wrote = False
    for _stamp, index in list(_INDEXES.values()):
        key = index.cache_key
        if key is None or key in _SAVED:
            continue
        try:
            with _CACHE_FILE.open("rb") as handle:
                current = _stored_key(handle) == key
        except Exception:  # noqa: BLE001 - no file, or a damaged one: written below
            current = False
        if not current:
            from outcomes.errors import OutcomesError

            try:
                index.interdependencies()  # computed (or its error kept) before the copy is shared
            except OutcomesError:
                pass  # kept in the index: each pack says why, as without the copy
            index.pathway_store()
            _CACHE_FILE.parent.mkdir(parents=True, exist_ok=True)
            tmp = _CACHE_FILE.with_name(f"{_CACHE_FILE.name}.{os.getpid()}.tmp")
            with tmp.open("wb") as handle:
                pickle.dump(key, handle, protocol=pickle.HIGHEST_PROTOCOL)
                pickle.dump(index, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, _CACHE_FILE)  # whole or not at all; two writers of one key write the same index
            wrote = True
        _SAVED.add(key)
    return wrote


def labels() -> dict[tuple[str, str], str]:
    """Each system measure's name by (agency, measure), from the catalogue."""
    from contracts.system import load_catalogue

    return {item.key: item.name for item in load_catalogue().measures}
