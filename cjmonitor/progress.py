"""Live progress on long work, behind one small API the pipeline, documents and demo code call.

    from cjmonitor import progress

    with progress.stage("Rendering documents", total=len(tasks)) as tick:
        for task in tasks:
            ...
            tick()              # one more done (tick(5): five more; tick(0, total=n) sets the total later)

Where it goes, chosen when a stage starts:

- stderr is a terminal: a rich progress bar per stage (stage, done of total, rate, elapsed, time left);
- anything else (a log file, a pipe, Airflow's task log): plain lines on stderr, one when a stage
  starts, one every few seconds while it runs (``CJMONITOR_PROGRESS_INTERVAL``, default 5 s) and one
  when it ends;
- nowhere: ``cjmonitor --quiet`` / ``cjmonitor <command> --quiet``, ``CJMONITOR_PROGRESS=off``, or a
  ``--json`` command whose stderr is not a terminal (a script reading the JSON wants no chatter).

Progress never writes to stdout, so ``--json`` output stays clean. Every finished stage is recorded:
``timings()`` lists them (name, seconds, done, total) for summaries such as the demo's.
``CJMONITOR_PROGRESS=bar`` or ``=lines`` forces a mode.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

__all__ = ["StageTiming", "configure", "format_seconds", "stage", "timings", "track"]


@dataclass(frozen=True)
class StageTiming:
    name: str
    seconds: float
    done: int
    total: int | None


_settings = {"enabled": True, "json": False}
_timings: list[StageTiming] = []
_live: dict = {"progress": None, "depth": 0}
_lock = threading.Lock()


def configure(*, enabled: bool | None = None, json_output: bool | None = None) -> None:
    """Set by the CLI for one command: ``enabled=False`` for ``--quiet``; ``json_output=True`` for ``--json``."""
    if enabled is not None:
        _settings["enabled"] = enabled
    if json_output is not None:
        _settings["json"] = json_output


def timings() -> list[StageTiming]:
    """The stages finished in this process so far, oldest first."""
    with _lock:
        return list(_timings)


def format_seconds(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _mode() -> str:
    forced = os.environ.get("CJMONITOR_PROGRESS", "auto").strip().lower()
    if forced in ("0", "off", "no", "false", "quiet") or not _settings["enabled"]:
        return "off"
    stream = sys.stderr
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    if forced in ("bar", "lines"):
        return forced
    if tty:
        return "bar"
    return "off" if _settings["json"] else "lines"


def _interval() -> float:
    try:
        return max(0.2, float(os.environ.get("CJMONITOR_PROGRESS_INTERVAL", "5")))
    except ValueError:
        return 5.0


class _Counter:
    def __init__(self, total: int | None):
        self.done = 0
        self.total = total
        self.started = time.perf_counter()

    def line(self, name: str) -> str:
        elapsed = time.perf_counter() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.done}/{self.total}" if self.total is not None else f"{self.done} done" if self.done else "working"]
        if self.done:
            parts.append(f"{rate:.1f}/s" if rate >= 1 else f"{60 * rate:.1f}/min")
        parts.append(f"elapsed {format_seconds(elapsed)}")
        if self.total and self.done and self.done < self.total:
            parts.append(f"about {format_seconds((self.total - self.done) / rate)} left")
        return f"{name}: " + ", ".join(parts)


def _write(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # a closed stream must never break the work
        pass


@contextmanager
def stage(name: str, total: int | None = None) -> Iterator[Callable[..., None]]:
    """Show progress of one stage of ``total`` items (None: unknown); yields ``tick(advance=1, *, total=None)``."""
    mode = _mode()
    counter = _Counter(total)
    bar = None
    task_id = None
    stop = threading.Event()
    heartbeat = None
    if mode == "bar":
        bar, task_id = _bar_start(name, total)
    elif mode == "lines":
        _write(f"{name}: started" + (f", {total} to do" if total is not None else ""))
        interval = _interval()

        def beat() -> None:
            while not stop.wait(interval):
                _write(counter.line(name))

        heartbeat = threading.Thread(target=beat, name=f"progress-{name}", daemon=True)
        heartbeat.start()

    def tick(advance: int = 1, *, total: int | None = None) -> None:
        counter.done += advance
        if total is not None:
            counter.total = total
        if bar is not None:
            bar.update(task_id, advance=advance, **({"total": total} if total is not None else {}))

    ok = False
    try:
        yield tick
        ok = True
    finally:
        seconds = time.perf_counter() - counter.started
        stop.set()
        if heartbeat is not None:
            heartbeat.join(timeout=1)
        with _lock:
            _timings.append(StageTiming(name, round(seconds, 2), counter.done, counter.total))
        if bar is not None:
            _bar_finish(bar, task_id, counter, ok)
        elif mode == "lines":
            done = f"{counter.done}/{counter.total}" if counter.total is not None else f"{counter.done or ''}"
            _write(f"{name}: {'done' if ok else 'stopped at'} {done} in {format_seconds(seconds)}".replace("  ", " "))


def track(items: Iterable[T], name: str, total: int | None = None) -> Iterator[T]:
    """``for item in progress.track(items, "Loading"):``: a stage that counts an item done when the loop moves on."""
    if total is None:
        items = items if isinstance(items, Sized) else list(items)
        total = len(items)
    with stage(name, total=total) as tick:
        for item in items:
            yield item
            tick()


def _bar_start(name: str, total: int | None):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            if not speed:
                return Text("", style="progress.data.speed")
            return Text(f"{speed:.1f}/s" if speed >= 1 else f"{60 * speed:.1f}/min", style="progress.data.speed")

    with _lock:
        if _live["progress"] is None:
            _live["progress"] = Progress(
                SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
                MofNCompleteColumn(), RateColumn(), TextColumn("elapsed"), TimeElapsedColumn(),
                TextColumn("left"), TimeRemainingColumn(), console=Console(file=sys.stderr), transient=False)
            _live["progress"].start()
        _live["depth"] += 1
        bar = _live["progress"]
    return bar, bar.add_task(name, total=total)


def _bar_finish(bar, task_id, counter: _Counter, ok: bool) -> None:
    if counter.total is None:
        bar.update(task_id, total=counter.done, completed=counter.done)
    elif ok:
        bar.update(task_id, completed=counter.total)
    bar.stop_task(task_id)
    with _lock:
        _live["depth"] -= 1
        if _live["depth"] == 0:
            bar.stop()
            _live["progress"] = None
