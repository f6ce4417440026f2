"""The run directory as a careful user tries it: files that are not fabric's, `--force`, two
writers, a run stopped before its first checkpoint, a full disk, a read-only mount, and the
bytes of a checkpoint. Each case was a defect first (issue 14)."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import invoke, one_line_error
from safetensors.numpy import load as safetensors_load
from safetensors.numpy import save as library_save

from fabric_cli.analysis import rundir, runs
from fabric_cli.analysis.runs import CRASH_AT, load_checkpoint, safetensors_bytes
from fabric_cli.chronicle import read_events
from fabric_cli.scenario import scenarios_dir

STEPS = "6"


def quick_scenario(tmp_path: Path) -> Path:
    text = (scenarios_dir() / "tiny.toml").read_text(encoding="utf-8")
    for key, value in {"probe_every": 3, "warmup_steps": 1, "n_sentences": 8}.items():
        text = re.sub(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.MULTILINE)
    path = tmp_path / "quick.toml"
    path.write_text(text, encoding="utf-8")
    return path


def train(tmp_path: Path, run_dir: Path, *extra: str):
    return invoke("train", ["-s", str(quick_scenario(tmp_path)), "--steps", STEPS,
                            "--run-dir", str(run_dir), "--quiet", *extra])


def fabric_child(args: list[str], **env: str) -> subprocess.Popen:
    base = {k: v for k, v in os.environ.items() if k not in (CRASH_AT, "FABRIC_DEBUG")}
    return subprocess.Popen([sys.executable, "-m", "fabric_cli", *args], env={**base, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# -- 1. files that are not fabric's ----------------------------------------------------------
def test_a_directory_holding_someone_elses_files_is_refused_and_left_alone(tmp_path):
    p = tmp_path / "p"
    p.mkdir()
    (p / "config.json").write_text('{"my": 1}')
    for flags in ((), ("--force",), ("--resume",)):
        line = one_line_error(train(tmp_path, p, *flags))
        # --resume too: no "start it with `fabric train --run-dir p`" that would be refused
        assert "not a fabric run directory" in line and "start it with" not in line, line
    assert (p / "config.json").read_text() == '{"my": 1}'
    assert sorted(x.name for x in p.iterdir()) == ["config.json"]


def test_force_removes_only_what_fabric_wrote(tmp_path):
    run = tmp_path / "run"
    assert train(tmp_path, run).exit_code == 0
    (run / "notes.txt").write_text("mine")
    (run / "vocab-mine.json").write_text("{}")
    (run / "step-000006.1" / "mine.txt").write_text("hidden in a step directory")
    before = load_checkpoint(run).step
    result = train(tmp_path, run, "--force")
    assert result.exit_code == 0, result.output
    assert (run / "notes.txt").read_text() == "mine"
    assert (run / "vocab-mine.json").read_text() == "{}"
    assert (run / "step-000006.1" / "mine.txt").exists()  # its directory kept for it
    assert load_checkpoint(run).step == before
    starts = [e for e in read_events(run / "chronicle.jsonl") if e["type"] == "run_start"]
    assert len(starts) == 1  # the old story went with --force


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_run_dir_is_refused(tmp_path, monkeypatch, value):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(train(tmp_path, value))  # type: ignore[arg-type]
    assert "--run-dir is empty" in line
    assert sorted(x.name for x in tmp_path.iterdir()) == ["quick.toml"]


def test_a_run_written_before_the_marker_is_still_read_but_not_trained_over(tmp_path):
    run = tmp_path / "run"
    assert train(tmp_path, run).exit_code == 0
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for name in ("config.json", "model.safetensors", "optimizer.safetensors",
                 "trainer_state.json"):
        (legacy / name).write_bytes((run / "checkpoint" / name).read_bytes())
    (legacy / "chronicle.jsonl").write_bytes((run / "chronicle.jsonl").read_bytes())
    assert load_checkpoint(legacy).step == int(STEPS)
    line = one_line_error(train(tmp_path, legacy, "--force"))
    assert "older fabric" in line


# -- 2. one writer -------------------------------------------------------------------------------
def test_a_second_writer_is_refused_naming_the_process_and_readers_still_read(tmp_path):
    run = tmp_path / "run"
    assert train(tmp_path, run).exit_code == 0
    hold = ("import sys; from pathlib import Path; "
            "from fabric_cli.analysis.rundir import RunLock; RunLock(Path(sys.argv[1])); "
            "print('locked', flush=True); sys.stdin.read()")
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(run)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        for flags in (("--force",), ("--resume",), ()):
            line = one_line_error(train(tmp_path, run, *flags))
            assert f"process {holder.pid}" in line, line
        assert load_checkpoint(run).step == int(STEPS)  # a reader is never locked out
        assert invoke("heads", ["--run", str(run)]).exit_code == 0
    finally:
        holder.communicate("", timeout=30)
    assert train(tmp_path, run, "--force").exit_code == 0  # the lock went with its process


# -- 3. stopped before the first checkpoint ---------------------------------------------------
def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(tmp_path):
    run = tmp_path / "run"
    child = fabric_child(["train", "-s", str(quick_scenario(tmp_path)), "--steps", STEPS,
                          "--run-dir", str(run), "-q"], **{CRASH_AT: "event:1"})
    child.communicate(timeout=120)
    assert child.returncode == -9
    assert not (run / "checkpoint").exists()
    line = one_line_error(invoke("infer", ["The queen met the king .", "--run", str(run)]))
    assert "no checkpoint saved yet" in line and "--resume" in line
    line = one_line_error(train(tmp_path, run))
    assert "--resume" in line
    result = invoke("train", ["--resume", "--run-dir", str(run), "-q"])
    assert result.exit_code == 0, result.output
    assert "stopped before its first checkpoint" in result.stderr
    assert load_checkpoint(run).step == int(STEPS)  # the steps it was started with


def test_resume_with_the_chronicle_missing_names_the_chronicle(tmp_path):
    run = tmp_path / "run"
    child = fabric_child(["train", "-s", str(quick_scenario(tmp_path)), "--steps", STEPS,
                          "--run-dir", str(run), "-q"], **{CRASH_AT: "checkpoint-swept:2"})
    child.communicate(timeout=120)
    (run / "chronicle.jsonl").unlink()
    line = one_line_error(invoke("train", ["--resume", "--run-dir", str(run)]))
    assert "chronicle.jsonl: missing" in line and "--force" in line


def test_a_run_copied_with_its_links_followed_is_never_trained_over(tmp_path):
    import shutil

    run = tmp_path / "run"
    child = fabric_child(["train", "-s", str(quick_scenario(tmp_path)), "--steps", STEPS,
                          "--run-dir", str(run), "-q"], **{CRASH_AT: "checkpoint-swept:2"})
    child.communicate(timeout=120)
    copy = tmp_path / "copy"
    shutil.copytree(run, copy, symlinks=False)  # as `cp -rL` or `scp -r` copy it
    story = (copy / "chronicle.jsonl").read_bytes()
    steps = sorted(p.name for p in copy.iterdir() if p.name.startswith("step-"))
    assert invoke("infer", ["The king left.", "--run", str(copy)]).exit_code == 0
    for args in (["--resume"], ["--force"]):
        line = one_line_error(invoke("train", [*args, "--run-dir", str(copy)]))
        assert "checkpoint is a directory" in line and "cp -a" in line, line
    assert (copy / "chronicle.jsonl").read_bytes() == story  # nothing lost
    assert sorted(p.name for p in copy.iterdir() if p.name.startswith("step-")) == steps


# -- 4. the disk says no ----------------------------------------------------------------------
def test_a_full_disk_at_a_checkpoint_is_one_line_and_the_run_resumes(tmp_path, monkeypatch):
    run = tmp_path / "run"
    real_write = runs._write_file
    calls = {"n": 0}

    def full_after_the_first_checkpoint(path, data):
        if path.parent.name.startswith(".step-"):
            calls["n"] += 1
        if calls["n"] > 5:  # the first checkpoint's five files go through
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(path, data)

    monkeypatch.setattr(runs, "_write_file", full_after_the_first_checkpoint)
    line = one_line_error(train(tmp_path, run))
    assert "No space left on device" in line
    assert "checkpoint of step 0 is kept" in line and "fabric train --resume" in line
    monkeypatch.setattr(runs, "_write_file", real_write)
    result = invoke("train", ["--resume", "--run-dir", str(run), "-q"])
    assert result.exit_code == 0, result.output
    assert not [p.name for p in run.iterdir() if ".tmp-" in p.name]


def test_a_full_disk_at_a_checkpoint_leaves_no_half_written_files_taking_space(
        tmp_path, monkeypatch):
    run = tmp_path / "run"
    real_write = runs._write_file
    calls = {"n": 0}

    def full_in_the_second_checkpoint(path, data):
        calls["n"] += path.parent.name.startswith(".step-")
        if calls["n"] > 7:  # two files of the second checkpoint are written, then no more
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(path, data)

    monkeypatch.setattr(runs, "_write_file", full_in_the_second_checkpoint)
    assert "No space left on device" in one_line_error(train(tmp_path, run))
    assert not [p.name for p in run.iterdir() if ".tmp-" in p.name]
    assert invoke("infer", ["The king left.", "--run", str(run)]).exit_code == 0


def test_a_run_killed_before_its_marker_can_be_trained_again(tmp_path):
    """Killed between taking the lock and writing the marker, a run left only its lock (and
    perhaps a staged name): not 'not a fabric run directory' for ever after."""
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text("4242\n")
    (run / ".links.tmp-4242").symlink_to("checkpoint")
    result = train(tmp_path, run)
    assert result.exit_code == 0, result.output
    assert rundir.has_marker(run) and (run / "chronicle.jsonl").is_file()
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / ".lock").write_text("my notes, not a process id")
    assert "not a fabric run directory" in one_line_error(train(tmp_path, theirs))
    assert (theirs / ".lock").read_text() == "my notes, not a process id"


def test_a_file_system_without_links_is_refused_before_training(tmp_path, monkeypatch):
    """A FAT USB stick: not a failure at the first checkpoint whose 'resume with …' fails
    the same way every time."""
    def no_links(*args, **kwargs):
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(os, "symlink", no_links)
    run = tmp_path / "run"
    line = one_line_error(train(tmp_path, run))
    assert line.endswith(f"{run} is on a file system without symbolic links, which fabric's "
                         "checkpoints need; choose another --run-dir on another disk"), line
    assert "--resume" not in line and not (run / "chronicle.jsonl").exists()


def test_a_disk_without_locks_says_what_to_do(tmp_path, monkeypatch):
    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(rundir.fcntl, "flock", no_locks)
    line = one_line_error(train(tmp_path, tmp_path / "run"))
    assert "No locks available" in line and line.endswith("choose another --run-dir on a "
                                                          "local disk"), line


@pytest.fixture
def tmpfs(tmp_path):
    """A tiny filesystem of our own (needs root to mount; skipped elsewhere)."""
    where = tmp_path / "mnt"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(where)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_force_on_a_read_only_mount_is_one_line(tmp_path, tmpfs):
    run = tmpfs / "run"
    assert train(tmp_path, run).exit_code == 0
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    line = one_line_error(train(tmp_path, run, "--force"))
    assert "Read-only file system" in line
    assert load_checkpoint(run).step == int(STEPS)


def test_a_really_full_disk_is_one_line(tmp_path, tmpfs):
    filler = tmpfs / "filler"
    with open(filler, "wb") as f:  # leave about 100 kB: less than a checkpoint needs
        f.write(b"\0" * (512 * 1024 - 100 * 1024))
    line = one_line_error(train(tmp_path, tmpfs / "run"))
    assert "No space left on device" in line, line


# -- 5. the bytes of a checkpoint ----------------------------------------------------------
def test_safetensors_bytes_are_reproducible_and_read_by_the_library():
    rng = np.random.default_rng(0)
    arrays = {f"t{i}": rng.standard_normal((3, i + 1)).astype(np.float32) for i in range(5)}
    meta = {k: str(i) for i, k in enumerate("zyxwvutsrq")}
    ours = {safetensors_bytes(arrays, meta) for _ in range(20)}
    assert len(ours) == 1
    theirs = {library_save(arrays, meta) for _ in range(20)}
    assert len(theirs) > 1, "the library's own writer orders metadata at random"
    back = safetensors_load(ours.pop())
    assert all(np.array_equal(back[k], arrays[k]) for k in arrays)


def test_two_identical_runs_write_identical_weights(tmp_path):
    for name in ("a", "b"):
        assert train(tmp_path, tmp_path / name).exit_code == 0
    for file in ("model.safetensors", "optimizer.safetensors", "vocab.json", "config.json"):
        assert (tmp_path / "a" / "checkpoint" / file).read_bytes() == (
            tmp_path / "b" / "checkpoint" / file).read_bytes(), file


def test_the_vocabulary_and_tokenizer_travel_with_the_weights(tmp_path):
    run = tmp_path / "run"
    assert train(tmp_path, run).exit_code == 0
    data = (run / "model.safetensors").read_bytes()
    (n,) = np.frombuffer(data[:8], dtype="<u8")
    meta = json.loads(data[8:8 + int(n)])["__metadata__"]
    vocab = json.loads((run / "vocab.json").read_text())
    assert json.loads(meta["vocab"]) == vocab["tokens"][:] and vocab["tokens"][:3] == [
        "<pad>", "<bos>", "<unk>"]
    assert json.loads(meta["tokenizer"])["case"] == "casefold" == vocab["rules"]["case"]
    assert len(vocab["tokens"]) == json.loads((run / "config.json").read_text())["d_vocab"]


def test_float16_weights_are_refused(tmp_path):
    run = tmp_path / "run"
    assert train(tmp_path, run).exit_code == 0
    path = run / "checkpoint" / "model.safetensors"
    arrays = safetensors_load(path.read_bytes())
    meta = json.loads(path.read_bytes()[8:8 + int(np.frombuffer(path.read_bytes()[:8],
                                                                 "<u8")[0])])["__metadata__"]
    path.write_bytes(safetensors_bytes({k: v.astype(np.float16) for k, v in arrays.items()},
                                       meta))
    line = one_line_error(invoke("infer", ["The queen met the king .", "--run", str(run)]))
    assert "float16" in line


def test_sweep_removes_only_fabrics_leftovers(tmp_path):
    run = tmp_path / "run"
    assert train(tmp_path, run).exit_code == 0
    (run / ".model.safetensors.tmp-4242").write_bytes(b"half")
    (run / ".step-000099.tmp-4242").mkdir()
    (run / "step-000003").mkdir()  # a step directory no pointer names
    (run / "step-notes").mkdir()  # not fabric's name
    removed = rundir.sweep_orphans(run)
    assert sorted(removed) == [".model.safetensors.tmp-4242", ".step-000099.tmp-4242",
                               "step-000003"]
    assert (run / "step-notes").is_dir()
    assert load_checkpoint(run).step == int(STEPS)


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_a_users_file_named_like_a_staged_one_keeps_the_directory_theirs(tmp_path, kind):
    """Only the names a train writes before its marker count as fabric's: a folder holding a
    user's `.draft.tmp-1` is refused as before, not taken over (a later train's sweep would
    delete that file, or that folder and all it holds)."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    draft = theirs / ".draft.tmp-1"
    if kind == "file":
        draft.write_text("my notes")
    else:
        draft.mkdir()
        (draft / "notes.txt").write_text("my notes")
    assert "not a fabric run directory" in one_line_error(train(tmp_path, theirs))
    assert not rundir.has_marker(theirs)
    assert sorted(p.name for p in theirs.iterdir()) == [".draft.tmp-1"]
