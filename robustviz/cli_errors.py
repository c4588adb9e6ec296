"""How the command line reports what stops a run: one line saying what happened and what to do, no traceback.

A run writes its store region by region, so whatever stops it — Ctrl-C, SIGTERM (a batch scheduler's time limit),
a full disk, a lost dask scheduler — loses at most the regions in flight: the line names ``--resume``. A damaged
chunk found while reading a store is reported with its variable and path. Anything else is a bug in robustviz and
keeps its traceback.
"""

from __future__ import annotations

import errno
import signal
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

#: Exit status of a run stopped by a signal: 128 + the signal number, as a shell reports it.
EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM (a BaseException, like KeyboardInterrupt, so
    no ``except Exception`` on the way swallows it)."""


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Terminated` in the main thread instead of killing the process silently."""
    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def store_of(args: Any) -> Path | None:
    """The store a command writes or reads, if any."""
    command = getattr(args, "command", None)
    if command == "run":
        return Path(args.store) if args.store else Path(args.spec).with_suffix(".zarr")
    if command == "demo":
        return Path(args.out) / "cube.zarr"
    for name in ("cube", "store"):
        value = getattr(args, name, None)
        if isinstance(value, str):
            return Path(value)
    return None


def resume_hint(args: Any) -> str:
    """How to continue the interrupted command: ``robustviz run SPEC --store STORE --resume`` (the demo resumes by
    itself when rerun)."""
    store = store_of(args)
    if getattr(args, "command", None) == "run":
        return (f"finished regions are kept in {store}; continue with: robustviz run {args.spec} --store {store} "
                f"--resume")
    if getattr(args, "command", None) == "demo":
        return (f"finished regions are kept in {store}; rerun robustviz demo --out {args.out} to continue (the demo "
                f"resumes like run --resume)")
    return "nothing was written; run the command again (a run resumes with --resume)"


def interrupted_line(args: Any, what: str) -> str:
    return f"interrupted ({what}): {resume_hint(args)}"


def _from_modules(error: BaseException, prefixes: tuple[str, ...]) -> bool:
    """Whether ``error`` (or an exception it chains from) was raised or defined in a module starting with one of
    ``prefixes``."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__module__.startswith(prefixes):
            return True
        for frame, _ in traceback.walk_tb(current.__traceback__):
            if frame.f_globals.get("__name__", "").startswith(prefixes):
                return True
        current = current.__cause__ or current.__context__
    return False


def damaged_variable(store: Path) -> tuple[str, str] | None:
    """(variable, why) of the first array of ``store`` whose chunks cannot be read back, or None."""
    import warnings

    import zarr

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            group = zarr.open_group(store, mode="r")
            names = sorted(name for name, _ in group.arrays())
    except Exception as error:  # the group itself is unreadable
        return ".", f"{type(error).__name__}: {error}"
    for name in names:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                group[name][...]
        except Exception as error:
            return name, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return None


def explain(error: BaseException, args: Any) -> str | None:
    """The one-line message for ``error`` during ``args``'s command, or None when it is a bug (keep the trace)."""
    store = store_of(args)
    if isinstance(error, OSError) and error.errno in _DISK_FULL:
        where = f" while writing {store}" if store is not None else ""
        return (f"no space left on the device{where} ({error.strerror or error}); free space, then "
                f"{resume_hint(args) if store is not None else 'run the command again'}")
    scheduler = getattr(args, "scheduler", None)
    if scheduler and (_from_modules(error, ("distributed", "tornado")) or isinstance(error, (OSError, TimeoutError))):
        why = str(error).splitlines()[0] if str(error) else "connection closed"
        return (f"lost the dask scheduler {scheduler!r} ({type(error).__name__}: {why}); restart it (or use "
                f"--scheduler local), then {resume_hint(args)}")
    if store is not None and store.exists() and _from_modules(error, ("zarr", "numcodecs", "xarray.backends")):
        damage = damaged_variable(store)
        if damage is not None:
            name, why = damage
            what = "its root metadata" if name == "." else f"variable {name!r} ({store / name})"
            return (f"the store {store} is damaged: {what} cannot be read ({why}); recompute it with "
                    f"robustviz run SPEC --store {store} --resume, or start over in a new --store")
    return None


def report(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


__all__ = ["EXIT_SIGINT", "EXIT_SIGTERM", "Terminated", "damaged_variable", "explain", "interrupted_line",
           "resume_hint", "sigterm_raises", "store_of"]
