"""The writer lock of a store: one evaluation writes a store at a time.

The lock is a file beside the store, ``.NAME.zarr.lock``, holding the writer's pid, host and start time, and held
with ``flock``: the kernel releases it when the process ends in any way (SIGKILL included), so a lock left by a dead
run is stale by construction and the next run takes it over. Where the file system has no ``flock`` (some network
mounts), the pid is checked instead: a lock whose pid is no longer alive on this host is stale. A second writer gets
a :class:`StoreError` naming the first one's pid and host. Dask workers do not take the lock: the client that
submitted the run holds it, and workers claim regions through the ``done`` mask (``distributed.py``).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def lock_path(store: Path) -> Path:
    return store.with_name(f".{store.name}.lock")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(path: Path) -> dict:
    try:
        info = json.loads(path.read_text() or "{}")
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def _refuse(store: Path, path: Path, info: dict) -> Exception:
    from .store import StoreError

    who = f"pid {info.get('pid', '?')} on host {info.get('host', '?')}, since {info.get('started', '?')}"
    return StoreError(f"the store {store} is being written by another robustviz run ({who}); wait for it to finish "
                      f"(two writers would compute the same regions twice). If that run is gone, delete {path}")


@contextmanager
def writer_lock(store: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the store's writer lock for the duration of the block; raises StoreError if another run holds it."""
    store = Path(store)
    store.parent.mkdir(parents=True, exist_ok=True)
    path = lock_path(store)
    me = {"pid": os.getpid(), "host": socket.gethostname(),
          "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as error:
                    if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise _refuse(store, path, _holder(path)) from None
                    _check_pid(store, path)  # no flock on this file system: fall back to the pid
            else:
                _check_pid(store, path)
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the previous holder removed the file between our open and our flock: try again
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(me).encode())
        except BaseException:
            os.close(fd)
            raise
        break
    try:
        yield path
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        os.close(fd)


def _check_pid(store: Path, path: Path) -> None:
    info = _holder(path)
    pid = info.get("pid")
    if isinstance(pid, int) and pid != os.getpid() and (info.get("host") != socket.gethostname() or _alive(pid)):
        raise _refuse(store, path, info)


__all__ = ["lock_path", "writer_lock"]
