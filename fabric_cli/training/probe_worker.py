"""The probes' own process: the Prober's forward passes run on the machine's second core
while the Trainer goes on training on the first.

A probe reads the weights of one step and changes nothing, so it need not hold up the loop.
The Trainer hands the worker the step's weights and goes on; it tells the probe, and takes
that step's checkpoint, when the answer comes back (training/trainer.py keeps the events of
the steps in between and tells them after it, so the chronicle's order is the one a probe in
the loop would give). The worker runs the same Prober code on the same weights with one BLAS
thread, so its numbers are the ones the loop would have measured: tests/test_probe_worker.py
compares the two chronicles.

The worker runs the parent's own copy of fabric_cli (not whichever one its working
directory would put first). It is a child process of its own session (Ctrl-C at the terminal
reaches only the Trainer, which then waits for the probe in flight before its last
checkpoint), reading requests on its stdin and answering on its stdout, each message a
length and then bytes (nn/messages.py):
    parent -> worker   JSON set-up: the scenario's path and a digest of what probes read of
                       it (grammar, probes, seeds, model), model config, dropout, seed
    worker -> parent   JSON {"ready": true} or {"error": "..."}
    parent -> worker   JSON {"kind": "probe", "step", "train_loss"} or, for the final
                       ablation's share, {"kind": "silence", "sets": [[[layer, head], ...]],
                       "roles"}; then the weights: float32 bytes in param_shapes order
    worker -> parent   JSON {"event": the probe event} or {"measured": [[heads, {role:
                       {"loss", "acc"}}], ...]}, numbers exact (NaN allowed), with
                       "seconds" (the worker's time on it); or {"error": "..."}
Nothing is pickled. Whenever the worker cannot answer (it failed to start, its scenario does
not match, it died, or it stopped answering for longer than the loop's patience,
training/probe_flow.py), `ProbeWorker` says so and the Trainer probes in its own process.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from fabric_cli.nn.messages import (
    encode,
    error_answer,
    protocol_pipes,
    read_message,
    start_child,
    stop_process,
    unflatten,
    write_message,
)

WAIT_SLICE = 0.25  # seconds: how often a wait for the worker asks whether to give up


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def probed_language(scenario) -> str:
    """A digest of all a Prober reads from its scenario (every part's repr is
    deterministic): the worker's copy, loaded from the file, must give the same."""
    return _digest(repr((scenario.grammar, scenario.probes, scenario.seed,
                         scenario.heldout_fraction, scenario.model)))


def exact_event(event: dict) -> dict:
    """A probe event as the worker sends it: numpy numbers as Python ones, tuples as lists,
    every value exact. The loop passes its own probes through this too, so the moments
    read the same numbers whichever process measured them."""
    return json.loads(encode(event))


# -- the parent's side ---------------------------------------------------------------------
class ProbeWorker:
    """The Trainer's handle on its probe process. `submit` sends a step's weights; `ready`
    says without waiting whether the answer is in; `result` waits for it. Every failure
    closes the worker (`alive` turns False) and `result` returns None: probe in-process."""

    def __init__(self, scenario, cfg, *, dropout: float, attn_dropout: float, seed: int,
                 shapes: dict[str, tuple[int, ...]]) -> None:
        self.shapes = shapes
        self.proc: subprocess.Popen | None = None
        self.pending: dict | None = None  # the request in flight
        self._started = False
        self._sender: threading.Thread | None = None
        self._sent: dict = {}
        if not scenario.text or scenario.path is None or (os.cpu_count() or 1) < 2:
            return
        try:
            self.proc = start_child("fabric_cli.training.probe_worker")
            write_message(self.proc.stdin.fileno(), encode({
                "scenario_path": os.fspath(scenario.path), "probed": probed_language(scenario),
                "cfg": cfg.to_dict(), "dropout": dropout, "attn_dropout": attn_dropout,
                "seed": seed}))
        except (OSError, ValueError):
            self.close()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _answer_waiting(self, timeout: float | None) -> bool:
        try:
            readable, _, _ = select.select([self.proc.stdout.fileno()], [], [], timeout)
        except (OSError, ValueError):
            return False
        return bool(readable)

    def _receive(self) -> dict | None:
        try:
            answer = json.loads(read_message(self.proc.stdout.fileno()))
        except (OSError, EOFError, ValueError):
            self.close()
            return None
        if not isinstance(answer, dict) or "error" in answer:
            self.close()
            return None
        return answer

    def _take_ready(self) -> bool:
        """Read the worker's first answer, its "ready", once it is in; False while it is
        still starting (or when it failed to)."""
        if not self._started and self.alive and self._answer_waiting(0):
            self._started = self._receive() is not None
        return self._started

    def submit(self, params: dict[str, np.ndarray], request: dict) -> bool:
        """Send `request` ({"kind": "probe", "step", "train_loss"} or {"kind": "silence",
        "sets", "roles"}) with the weights it reads. A worker still starting reads it once it
        is ready. False when nothing was sent: measure it here."""
        if not self.alive or self.pending is not None:
            return False
        if any(params[n].dtype != np.float32 or params[n].shape != s
               for n, s in self.shapes.items()):
            return False
        weights = np.concatenate([params[n].reshape(-1) for n in self.shapes]).tobytes()
        # written by a thread: the weights fill the pipe, and a worker still starting (or
        # busy) reads them only when it can, while the loop trains on
        self._sent = {}
        self._sender = threading.Thread(target=self._send, args=(encode(request), weights),
                                        daemon=True)
        self._sender.start()
        self.pending = request
        return True

    def _send(self, request: bytes, weights: bytes) -> None:
        try:
            fd = self.proc.stdin.fileno()
            write_message(fd, request)
            write_message(fd, weights)
            self._sent["ok"] = True
        except (OSError, ValueError, AttributeError):
            self._sent["ok"] = False

    def _sent_whole(self, give_up) -> bool:
        """Wait for the request's last byte to leave; False if it could not be written (or
        the wait was given up: a worker that stopped reading fills the pipe)."""
        if self._sender is not None:
            sender = self._sender

            def sent() -> bool:
                sender.join(WAIT_SLICE)
                return not sender.is_alive()

            if not self._patiently(sent, give_up):
                return False
            self._sender = None
        return bool(self._sent.get("ok"))

    def _patiently(self, arrived, give_up) -> bool:
        """Ask `arrived()` (which waits up to WAIT_SLICE) again until it says yes; False as
        soon as the worker is gone or `give_up(seconds waited)` says to stop waiting."""
        start = time.monotonic()
        while not arrived():
            if not self.alive or (give_up is not None and give_up(time.monotonic() - start)):
                return False
        return True

    def ready(self) -> bool:
        """Is the answer to the request in flight in (or has the worker died)? Never waits."""
        if self.pending is None:
            return False
        if not self.alive:
            return True
        return self._take_ready() and self._answer_waiting(0)

    def result(self, give_up=None) -> dict | None:
        """The answer to the request in flight ({"event", "seconds"} for a probe,
        {"measured", "seconds"} for silencings), waiting for it; None if the worker failed
        or `give_up(seconds waited)` said to stop waiting for a worker that does not answer
        (it is closed; the caller then measures it itself)."""
        request, self.pending = self.pending, None
        if request is None or not self._sent_whole(give_up) or not self.alive:
            self.close()
            return None
        if not self._started:
            if not self._patiently(lambda: self._answer_waiting(WAIT_SLICE), give_up):
                self.close()
                return None
            self._started = self._receive() is not None
            if not self._started:
                return None
        if not self._patiently(lambda: self._answer_waiting(WAIT_SLICE), give_up):
            self.close()
            return None
        answer = self._receive()
        wanted = "event" if request["kind"] == "probe" else "measured"
        if answer is None or wanted not in answer:
            self.close()
            return None
        return answer

    def close(self) -> None:
        proc, self.proc = self.proc, None
        self.pending = None
        if proc is None:
            return
        try:
            proc.kill()  # it holds nothing worth keeping; a sender blocked on it is freed
        except OSError:
            pass
        if self._sender is not None:
            self._sender.join()
            self._sender = None
        stop_process(proc)


# -- the worker's side ---------------------------------------------------------------------
def _prober(setup: dict):
    from fabric_cli.errors import FabricError
    from fabric_cli.language.corpus import Corpus
    from fabric_cli.lessons import LESSONS, lessons_dir, load_lesson
    from fabric_cli.nn.model import param_shapes
    from fabric_cli.scenario import load_scenario
    from fabric_cli.training.probing import Prober

    path = Path(setup["scenario_path"])
    found = []
    try:
        found.append(load_scenario(str(path)))
    except FabricError:
        pass
    if path.parent.resolve() == lessons_dir().resolve() and path.stem in LESSONS:
        lesson = load_lesson(path.stem)  # `fabric why`: either side of the lesson
        found += [lesson.with_scenario, lesson.without_scenario]
    scenario = next((s for s in found if probed_language(s) == setup["probed"]), None)
    if scenario is None:
        raise ValueError("the scenario file no longer holds the language being trained")
    corpus = Corpus(scenario)
    cfg = corpus.model_config()
    if cfg.to_dict() != setup["cfg"]:
        raise ValueError("the scenario's model is not the one being trained")
    prober = Prober(corpus, cfg, setup["dropout"], setup["seed"], setup["attn_dropout"])
    return prober, cfg, param_shapes(cfg)


def main() -> int:
    answers, requests = protocol_pipes()
    try:
        setup = json.loads(read_message(requests))
        prober, cfg, shapes = _prober(setup)
    except EOFError:
        return 0
    except Exception as exc:  # noqa: BLE001 - told to the parent, which probes itself
        write_message(answers, error_answer(exc))
        return 1
    write_message(answers, encode({"ready": True}))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        while True:
            try:
                request = json.loads(read_message(requests))
                params = unflatten(np.frombuffer(read_message(requests), dtype=np.float32),
                                   shapes)
            except EOFError:
                return 0
            try:
                start = time.perf_counter()
                answer = _answer(prober, cfg, params, request)
                answer["seconds"] = time.perf_counter() - start
                write_message(answers, encode(answer))
            except Exception as exc:  # noqa: BLE001
                write_message(answers, error_answer(exc))
                return 1


def _answer(prober, cfg, params: dict, request: dict) -> dict:
    if request["kind"] == "probe":
        return {"event": prober.probe(params, int(request["step"]), request["train_loss"])}
    sets = [[tuple(head) for head in heads] for heads in request["sets"]]
    measured = prober.measure_silencings(params, sets, request["roles"])
    return {"measured": [[[list(h) for h in sorted(key)], by_role]
                         for key, by_role in measured.items()]}


if __name__ == "__main__":
    sys.exit(main())
