"""Artifacts are built under a temporary name and renamed into place only when complete.

- The target is checked before any work: an existing file or symlink is refused even with --force, an
  existing folder needs --force, and the parent must be writable.
- One run at a time writes a target: an exclusive flock on `.NAME.lock` beside it (released by the OS however
  the run dies); a second run stops with exit 2, naming the first one's PID. The final rename never replaces
  an output that appeared meanwhile unless --force.
- The staging folder `.NAME.partial-<random>` records its PID; stale ones (their process is gone: SIGKILL,
  OOM) are removed by the next run on the same target, which says so.
- Success: the staging folder replaces the target. With --force the old folder is first renamed aside, the
  new one moved in, then the old one removed, so a failure never loses the previous output.
- Failure: bad input and interruption leave nothing; an internal error keeps the partial folder as
  `NAME.failed/` with `error.log` (the traceback) for diagnosis.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import tempfile
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .errors import DiskError, InputError

log = logging.getLogger("compress")
PID_FILE = ".staging-pid"
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
LOW_SPACE = 64 << 20  # below this much free space, a runtime's opaque write failure is taken for a full disk


def _existing(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(_existing(Path(path))).free


def _disk_condition(e: BaseException, where: Path) -> str | None:
    """Why writing failed, when it is the machine's condition (a full disk, a quota, a read-only filesystem)
    rather than a bug: OSError's errno, or an opaque runtime write error (OpenVINO's 'basic_ios::clear:
    iostream error') on a nearly full disk."""
    for err in (e, e.__cause__, e.__context__):
        if isinstance(err, OSError) and err.errno in DISK_ERRNOS:
            return os.strerror(err.errno)
    if isinstance(e, RuntimeError) and free_bytes(where) < LOW_SPACE:
        return f"a write failed with {str(e).splitlines()[0][:120]!r} on a nearly full disk"
    return None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_partials(out: Path) -> list[Path]:
    """Staging folders of `out` whose recorded process no longer runs (or that record none)."""
    stale = []
    for p in out.parent.glob(f".{out.name}.partial-*"):
        try:
            pid = int((p / PID_FILE).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = None
        if pid is None or (pid != os.getpid() and not _pid_alive(pid)):
            stale.append(p)
    return stale


def _lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


def _holder(lock: Path) -> str:
    try:
        return lock.read_text().split()[0]
    except (OSError, IndexError):
        return "?"


def _acquire(out: Path) -> int:
    """An exclusive lock on `out` for this run (flock on `.NAME.lock` beside it: the OS releases it when the
    process dies, however it dies). A second run on the same target stops here, naming the first one's PID."""
    lock = _lock_path(out)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(f"output {out} is being written by another run (PID {_holder(lock)}); wait for it or "
                             "choose another out", field="out") from None
        try:
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder removed that file as we opened it: lock the current one
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _release(out: Path, fd: int) -> None:
    """Remove the lock file, then unlock: nothing is left on disk, and a run that opened the removed file sees
    that it is gone (_acquire compares inodes) and locks the new one."""
    _lock_path(out).unlink(missing_ok=True)
    os.close(fd)


def _locked(out: Path) -> bool:
    lock = _lock_path(out)
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def check_target(out: Path, force: bool, need_bytes: int = 0) -> None:
    """Everything about the output location that can be checked before any work starts (with need_bytes, the
    free space an output needs: refused early rather than failing after the work)."""
    out = Path(out)
    if out.parent.is_dir() and _locked(out):
        raise InputError(f"output {out} is being written by another run (PID {_holder(_lock_path(out))}); wait "
                         "for it or choose another out", field="out")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InputError(f"output {out} exists and is not a folder ({'a symlink' if out.is_symlink() else 'a file'}); "
                         "choose another out (force=True only replaces a folder)", field=("out", "force"))
    if out.exists() and not force:
        raise InputError(f"output folder {out} exists; pass force=True to replace it", field="force")
    parent = out.parent
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"cannot create output folder {out}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"cannot write output folder {out}: {existing} is not writable")
    free = free_bytes(existing)
    if need_bytes and free < need_bytes:
        raise InputError(f"not enough free space for {out}: {existing} has {free / 1e6:.1f} MB free, the output "
                         f"needs about {need_bytes / 1e6:.0f} MB")


def check_apart(out: Path, inputs: Mapping[str, str | os.PathLike | None]) -> None:
    """Refuse an output inside an input folder (the next run would read the output as data: loose images, or
    a 17th class) and an input inside the output (replacing the output would delete it). `inputs` maps each
    input's field name to its path; None and paths that do not exist (named sources, errors found later) are
    passed over. Links are followed: a link to a data folder is that folder."""
    real_out = Path(os.path.realpath(out))
    for name, path in inputs.items():
        if path is None or not os.path.exists(path):
            continue
        real_in = Path(os.path.realpath(path))
        if real_out == real_in or real_in in real_out.parents:
            raise InputError(f"output {out} is inside {name} {path}: the next run would read it as data; "
                             "choose an out outside every input folder", field=("out", name))
        if real_out in real_in.parents:
            raise InputError(f"{name} {path} is inside output {out}, which the run replaces; choose another out",
                             field=(name, "out"))


@contextmanager
def staging_dir(out: Path, force: bool = False, need_bytes: int = 0) -> Iterator[Path]:
    """Yield a temporary folder beside `out` that replaces `out` when the block completes."""
    out = Path(out)
    check_target(out, force, need_bytes)
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = _acquire(out)
    try:
        for p in stale_partials(out):
            log.warning("removing stale partial output %s (its run ended without cleaning up)", p)
            shutil.rmtree(p, ignore_errors=True)
        yield from _staged(out, force)
    finally:
        _release(out, lock)


def _staged(out: Path, force: bool) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; outputs follow the umask like any folder
    (tmp / PID_FILE).write_text(f"{os.getpid()}\n")
    try:
        yield tmp
    except (InputError, KeyboardInterrupt):
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except BaseException as e:
        why = _disk_condition(e, out.parent)
        if why is not None:  # no room for a .failed/ folder either: clean up and say what the machine lacks
            shutil.rmtree(tmp, ignore_errors=True)
            raise DiskError(f"cannot write {out}: {why} ({free_bytes(out.parent) / 1e6:.1f} MB free on "
                            f"{_existing(out.parent)}); nothing was left, and an existing {out.name} is untouched"
                            ) from e
        failed = out.with_name(out.name + ".failed")
        try:
            (tmp / "error.log").write_text(traceback.format_exc())
            (tmp / PID_FILE).unlink(missing_ok=True)
            if failed.exists():
                shutil.rmtree(failed)
            os.replace(tmp, failed)
            log.error("run failed; its partial output is kept in %s (error.log)", failed)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    (tmp / PID_FILE).unlink(missing_ok=True)
    old = None
    if out.exists() and not force:  # made meanwhile by something that does not take the lock: never replaced
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(f"output folder {out} appeared while this run worked; pass force=True to replace it",
                         field="force")
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_text_atomic(path: Path, text: str) -> Path:
    """A file written under a temporary name, then renamed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, errors="backslashreplace")  # a non-UTF-8 file name must not crash a report
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
