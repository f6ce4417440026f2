"""The run directory as a place: whose it is (the marker), who writes it (the lock), and what
fabric may remove from it (only what fabric wrote).

    runs/<name>/.fabric-run        the marker: this directory is a fabric run (JSON)
    runs/<name>/.lock              held (flock) by the one process training here; holds its PID
    runs/<name>/scenario.toml      an exact copy of the scenario the run was trained on
    runs/<name>/chronicle.jsonl    the events (docs/chronicle.md)
    runs/<name>/checkpoint         -> step-000300   the current checkpoint (one atomic switch)
    runs/<name>/step-000300/       config.json, model.safetensors, optimizer.safetensors,
                                   trainer_state.json, vocab.json (analysis/runs.py)
    runs/<name>/config.json, model.safetensors, vocab.json -> checkpoint/…   for other tools

A directory that exists, is not empty and has no marker is not fabric's: fabric never writes
into it, and `--force` never empties it. Readers (infer, heads, narrate) take no lock: a
checkpoint is switched by one rename, so they always see a whole one. They only ask whether
a trainer holds it (`writer_pid`), to say the run is still training.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

from fabric_cli.errors import FabricError

try:  # POSIX; elsewhere a run directory is simply not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

MARKER = ".fabric-run"
LOCK = ".lock"
SCENARIO_COPY = "scenario.toml"
CHRONICLE = "chronicle.jsonl"
CHECKPOINT = "checkpoint"
LINKED = ("config.json", "model.safetensors", "vocab.json")  # top-level links into checkpoint/
CHECKPOINT_FILES = ("config.json", "model.safetensors", "optimizer.safetensors",
                    "trainer_state.json", "vocab.json")
MARKER_FORMAT = 2  # 1 was today's first layout: the four files at the top, no marker
STEP_DIR = re.compile(r"step-\d{6,}(\.\d+)?")
# Left behind by a process killed mid-write: staged files and directories, a staged pointer,
# the chronicle's rewrite on resume.
ORPHAN = re.compile(r"\.(.+\.tmp-\d+|chronicle-.*\.tmp)")


def describe_os_error(exc: OSError) -> str:
    return exc.strerror or str(exc)


def is_empty(directory: Path) -> bool:
    return next(directory.iterdir(), None) is None


def has_marker(directory: Path) -> bool:
    return (directory / MARKER).is_file()


def read_marker(directory: Path) -> dict:
    """The marker's contents ({} if unreadable: the marker's presence is what counts)."""
    try:
        data = json.loads((directory / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def is_legacy_run(directory: Path) -> bool:
    """A run written by fabric before the marker existed (its files at the top level)."""
    return (not has_marker(directory)
            and (directory / CHRONICLE).is_file()
            and (directory / "trainer_state.json").is_file()
            and not (directory / "trainer_state.json").is_symlink())


def check_writable_place(directory: Path, flag: str = "--run-dir") -> None:
    """Refuse, in one line, a place fabric must not train in."""
    if directory.exists() and not directory.is_dir():
        raise FabricError(f"{directory} is a file, not a run directory; choose another {flag}")
    if not directory.is_dir() or has_marker(directory):
        return
    if is_legacy_run(directory):
        raise FabricError(
            f"{directory} holds a run written by an older fabric (it has no {MARKER} marker); "
            f"`fabric infer`, `heads` and `narrate` still read it, but to train choose another "
            f"{flag} (or move that run aside)")
    try:
        theirs = [p.name for p in directory.iterdir() if not _left_by_fabric(p)]
    except OSError as exc:
        raise FabricError(f"cannot read {directory}: {describe_os_error(exc)}") from None
    if theirs:
        first = min(theirs)
        raise FabricError(
            f"{directory} is not a fabric run directory (it holds files such as {first!r} and "
            f"no {MARKER} marker), so fabric will not write there, even with --force; "
            f"choose a new or empty {flag}")


# what a train writes between its lock and its marker: check_links' probe, the marker staged
_BEFORE_MARKER = re.compile(rf"\.(links|{re.escape(MARKER)})\.tmp-\d+")


def _left_by_fabric(path: Path) -> bool:
    """What a `fabric train` stopped before writing its marker leaves: the lock (its process
    id and nothing else) and staged names. A directory holding only these is still new."""
    if _BEFORE_MARKER.fullmatch(path.name):  # not every ORPHAN name: a user's .x.tmp-1
        return path.is_symlink() or path.is_file()  # stays theirs (a sweep would delete it)
    if path.name != LOCK or path.is_symlink() or not path.is_file():
        return False
    try:
        return re.fullmatch(rb"\d*\n?", path.read_bytes()[:40]) is not None
    except OSError:
        return False


def write_marker(directory: Path, scenario: str, steps: int, seed: int) -> None:
    """The marker also keeps what a run stopped before its first checkpoint needs to start
    again as asked: its scenario's name, its number of steps and its seed."""
    from fabric_cli.analysis.runs import atomic_write_json

    atomic_write_json(directory / MARKER, {
        "fabric_run": MARKER_FORMAT, "scenario": scenario, "steps": steps, "seed": seed,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    })


# -- the lock ------------------------------------------------------------------------------------


class RunLock:
    """An exclusive lock on a run directory, held until `release()` or the process ends (the
    kernel drops a flock with its process, so a kill -9 never leaves a stale lock)."""

    def __init__(self, directory: Path, flag: str = "--run-dir") -> None:
        self.directory = directory
        self.path = directory / LOCK
        try:
            self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise FabricError(f"cannot write in {directory}: {describe_os_error(exc)}; "
                              f"choose another {flag}") from None
        if fcntl is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(self._fd)
            os.close(self._fd)
            self._fd = None
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise FabricError(f"cannot lock {self.path}: {describe_os_error(exc)} (a "
                                  "network disk without locks?); choose another "
                                  f"{flag} on a local disk") from None
            who = f"process {holder}" if holder else "another process"
            raise FabricError(
                f"{directory} is being written by {who} (another `fabric train`); wait for it "
                f"to finish, or choose another {flag}") from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def writer_pid(directory: Path) -> int | None:
    """The process training in `directory` now (it holds the lock), else None. A reader never
    creates the lock file, and tries the lock only while the process it names is alive (so it
    cannot trip a `fabric train` starting there, unless that process id was reused)."""
    try:
        fd = os.open(directory / LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        pid = _read_pid(fd)
        if pid is None or not process_alive(pid):
            return None
        if fcntl is None:  # pragma: no cover - Windows: the id alone
            return pid
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            return pid if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK) else None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs (another user's counts: it is not ours to judge)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):
        return True  # someone else's process, or no such number: leave what it holds be
    return True


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


# -- what fabric wrote ----------------------------------------------------------------------------


def current_step_dir(directory: Path) -> str | None:
    """The step directory `checkpoint` points to, or None (no checkpoint yet)."""
    try:
        target = os.readlink(directory / CHECKPOINT)
    except OSError:
        return None
    return target if STEP_DIR.fullmatch(target) else None


def check_checkpoint_link(directory: Path, flag: str = "--run-dir") -> None:
    """Refuse to train where `checkpoint` is not fabric's link to a step directory: a run copied
    with its links followed (cp -rL, scp -r) still reads, but a writer would take it for a run
    with no checkpoint yet, start it over and lose its checkpoint and its chronicle."""
    path = directory / CHECKPOINT
    if not os.path.lexists(path) or current_step_dir(directory) is not None:
        return
    what = ("a link to somewhere else" if path.is_symlink() else
            "a directory" if path.is_dir() else "a file")
    raise FabricError(f"{path} is {what}, not fabric's link to a step directory (was the run "
                      "copied with its links followed?); fabric will not train over it: copy "
                      f"it again with `cp -a`, or choose another {flag}")


def check_links(directory: Path, flag: str = "--run-dir") -> None:
    """Refuse, before training, a file system without symbolic links (a FAT USB stick, some
    network shares): every checkpoint is published by switching the `checkpoint` link, so
    the run would fail at its first one, and again at every resume."""
    probe = directory / f".links.tmp-{os.getpid()}"  # swept as an orphan if killed here
    try:
        probe.unlink(missing_ok=True)
        os.symlink(CHECKPOINT, probe)
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS):
            raise FabricError(f"{directory} is on a file system without symbolic links, "
                              "which fabric's checkpoints need; choose another "
                              f"{flag} on another disk") from None
        raise  # the caller says what else went wrong (a read-only disk, a full one)
    probe.unlink()


def step_text(value: object) -> str:
    """A step (or a count of steps) as every message writes it: 1400 -> "1,400", as the
    terminal views and the narrators do; a value that is not a whole number, as it is."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def step_of(step_dir: str) -> int:
    """The step a step directory's name carries: "step-000054.1" -> 54."""
    return int(step_dir.split("-", 1)[1].split(".")[0])


def sweep_orphans(directory: Path) -> list[str]:
    """Remove what a killed writer left: staged files, staged step directories and pointers,
    step directories no pointer names. Call only while holding the lock. Returns the names."""
    current = current_step_dir(directory)
    removed = []
    for entry in sorted(directory.iterdir()):
        name = entry.name
        if ORPHAN.fullmatch(name):
            _remove(entry)
            removed.append(name)
        elif STEP_DIR.fullmatch(name) and name != current and entry.is_dir() \
                and not entry.is_symlink():
            _remove_step_dir(entry)
            removed.append(name)
    return removed


def clear_run(directory: Path) -> None:
    """Remove everything fabric wrote in a marked run directory, and nothing else: the marker
    and the lock stay (the caller holds it). A file of the user's inside is left alone."""
    if not has_marker(directory):
        return
    sweep_orphans(directory)
    for name in LINKED:
        link = directory / name
        if link.is_symlink() and os.readlink(link) == f"{CHECKPOINT}/{name}":
            _unlink(link)
    current = current_step_dir(directory)
    if current is not None:
        _unlink(directory / CHECKPOINT)
        _remove_step_dir(directory / current)
    for name in (CHRONICLE, SCENARIO_COPY):
        _unlink(directory / name)


def _remove_step_dir(path: Path) -> None:
    for name in CHECKPOINT_FILES:
        _unlink(path / name)
    try:
        path.rmdir()
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
            raise FabricError(f"cannot remove {path}: {describe_os_error(exc)}") from None
        # a file someone else put there: leave the directory and the file


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        try:
            shutil.rmtree(path)
        except OSError as exc:
            raise FabricError(f"cannot remove {path}: {describe_os_error(exc)}") from None
    else:
        _unlink(path)


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise FabricError(f"cannot remove {path}: {describe_os_error(exc)}") from None
