"""The probes' way through the training loop, beside it when they can be.

A probe reads one step's weights. When the probe process (training/probe_worker.py) can take
it, the loop sends the weights, copies what that step's checkpoint needs (`Snapshot`) and
trains on; the steps trained meanwhile are held, and `_settle` tells the probe, its moments
and its checkpoint, then the held steps, in the order a loop that waited would have told
them. So the chronicle, the moments and every checkpoint are the same either way
(tests/test_probe_worker.py); only the loop's clock differs. Without a worker (one core, a
Fabric that trains on two BLAS threads, a worker that failed) the probe runs in the loop.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from fabric_cli.analysis import runs
from fabric_cli.analysis.ablation import silencing_sets
from fabric_cli.analysis.probes import ROLES
from fabric_cli.chronicle import number
from fabric_cli.training.probe_worker import exact_event


@dataclass
class Snapshot:
    """What a checkpoint of `step` needs, copied when its probe leaves for the worker."""

    step: int
    params: dict
    optimizer_t: int
    optimizer_arrays: dict
    rng_states: dict
    elapsed: float
    train_loss: float | None

    def state_arrays(self) -> dict:  # save_checkpoint reads the optimizer through these two
        return self.optimizer_arrays

    @property
    def t(self) -> int:
        return self.optimizer_t


def sound(probe: dict) -> bool:
    """Every loss the probe measured is finite (those it did not measure are None)."""
    losses = [probe.get(k) for k in ("train_loss", "val_loss", "heldout_loss")]
    return all(math.isfinite(number(x)) for x in losses if x is not None)


def shares(sets: list[frozenset], n_layers: int) -> tuple[list, list]:
    """The final ablation's sets in two: (the loop's, the probe process's). Every set that
    silences nothing in block 0 goes to the loop, which keeps the clean pass's streams to
    start it from (the probe process would run the clean pass again for it); the others go
    to whichever side has fewer blocks to pass through so far."""
    mine, theirs, load = [], [], [0, 0]
    for heads in sorted(sets, key=lambda s: -min((layer for layer, _ in s), default=0)):
        lowest = min((layer for layer, _ in heads), default=0)
        side = 0 if lowest > 0 or load[0] <= load[1] else 1
        (mine if side == 0 else theirs).append(heads)
        load[side] += n_layers - lowest
    return mine, theirs


# How long the loop waits for the worker's answer before it takes the worker for stalled
# (stopped, swapped out, hung), closes it and measures the step itself: PATIENCE seconds, or
# SLOWEST_TIMES its slowest answer so far if that is longer; once a stop is asked for
# (Ctrl-C), STOPPING seconds or that many times its slowest answer.
PATIENCE, STOPPING, SLOWEST_TIMES = 60.0, 5.0, 10.0


class ProbeFlow:
    """The Trainer's probe methods (a mixin: the state they use is the Trainer's)."""

    def _give_up(self, waited: float) -> bool:
        """Whether to stop waiting for the worker, `waited` seconds into a wait."""
        slowest = self._slowest_answer * SLOWEST_TIMES
        if self._stop:
            return waited > max(STOPPING, slowest)
        return waited > max(PATIENCE, slowest)

    def _answered(self, answer: dict) -> None:
        self.times.probes_beside += answer["seconds"]
        self._slowest_answer = max(self._slowest_answer, answer["seconds"])

    def _worker_free(self) -> bool:
        """The worker may take work: it exists and the loop trains on one BLAS thread (with
        two, the loop already uses both cores)."""
        return self.worker is not None and (self.threads.chosen or 1) == 1

    def _snapshot(self, train_loss: float | None) -> Snapshot:
        return Snapshot(
            step=self.step, params={n: p.copy() for n, p in self.params.items()},
            optimizer_t=self.optimizer.t,
            optimizer_arrays={n: a.copy() for n, a in self.optimizer.state_arrays().items()},
            rng_states={"data": runs.rng_state(self.data_rng),
                        "dropout": runs.rng_state(self.dropout_rng)},
            elapsed=self._elapsed(), train_loss=train_loss)

    def _probe(self) -> None:
        """The probe of this step: sent to the probe process when it can take it (the loop
        goes on, `_settle` tells it), else measured here and told at once."""
        t0 = time.perf_counter()
        recent = self._recent_losses
        train_loss = sum(recent) / len(recent) if recent else None
        self._recent_losses = []
        if self._worker_free() and self.worker.submit(
                self.params, {"kind": "probe", "step": self.step, "train_loss": train_loss}):
            self._pending = self._snapshot(train_loss)
            self.times.probes += time.perf_counter() - t0
            return
        event = exact_event(self.prober.probe(self.params, self.step, train_loss))
        self.times.probes += time.perf_counter() - t0
        self._tell_probe(event, None)

    def _tell_probe(self, event: dict, snapshot: Snapshot | None) -> None:
        """Tell the probe, its moments and its checkpoint. A step whose probe measured a
        loss that is not finite (the training batch's was, or the step would have stopped
        the run) is no checkpoint to keep: the Fabric already fails on some sentences, and
        the last good one, the one a divergence keeps, stays the one before."""
        self.last_probe = event
        self.emit(event)
        self._emit_all(self.detector.on_probe(event))
        if sound(event):
            self._checkpoint(snapshot)
            self.last_good = event["step"]

    def _tell_step(self, event: dict) -> None:
        if self._pending is not None:  # told after the probe in flight
            self._held.append(event)
            return
        # the loss as stored, so a resumed run (which reads it back) averages the same
        self._recent_losses.append(self.emit(event)["loss"])
        self._emit_all(self.detector.on_step(event))

    def _settle(self) -> None:
        """Tell the probe in flight (waiting for it), its checkpoint, then the steps held."""
        snapshot = self._pending
        if snapshot is None:
            return
        t0 = time.perf_counter()  # the loop's share: waiting, or probing here after all
        answer = self.worker.result(self._give_up)
        if answer is None:  # the worker failed or stalled: probe that step here
            event = exact_event(self.prober.probe(snapshot.params, snapshot.step,
                                                  snapshot.train_loss))
        else:
            event = answer["event"]
            self._answered(answer)
        self.times.probes += time.perf_counter() - t0
        self._pending = None
        self._tell_probe(event, snapshot)
        held, self._held = self._held, []
        for step_event in held:
            self._tell_step(step_event)

    def _clean_silencing(self) -> dict:
        """The final ablation's clean pass (no head silenced), measured for every role while
        the probe process measures the last probe: every ablation starts from it, whichever
        roles that probe's candidates turn out to have. Then, until that probe is in, the
        sets the probe before it would ablate (the candidates seldom change at the end of a
        run), for every role: those the last probe wants too are measured already, and a
        set's measures are the same whoever measures it and whenever."""
        guess = ({} if self.last_probe is None
                 else self.prober.role_candidates(self.last_probe, self.detector.thresholds))
        # the clean pass first, measured whatever the worker does; then each head alone,
        # which a changed candidate list changes least, then the groups
        sets = sorted(silencing_sets(guess), key=len)
        return self.prober.measure_silencings(self.params, sets, ROLES,
                                              enough=self.worker.ready,
                                              streams=self._final_streams)

    def _name_specialists(self, measured: dict | None = None) -> tuple[list[dict], list[dict]]:
        """The final ablation; the probe process takes its share of the passes (`shares`)
        when it is free. `measured`: passes already made (`_clean_silencing`)."""
        thresholds = self.detector.thresholds
        candidates = self.prober.role_candidates(self.last_probe, thresholds)
        roles = list(candidates)
        # sets measured ahead for the roles of a guess serve only if they cover these roles
        measured = {heads: by_role for heads, by_role in (measured or {}).items()
                    if all(role in by_role for role in roles)}
        sets = [s for s in silencing_sets(candidates) if s not in measured]
        mine, theirs = shares(sets, self.cfg.n_layers)
        streams = self._final_streams
        if (roles and theirs and self._worker_free() and self.worker.submit(
                self.params, {"kind": "silence", "sets": [sorted(s) for s in theirs],
                              "roles": roles})):
            measured |= self.prober.measure_silencings(self.params, mine, roles,
                                                       streams=streams)
            answer = self.worker.result(self._give_up)
            if answer is None:
                measured |= self.prober.measure_silencings(self.params, theirs, roles,
                                                           streams=streams)
            else:
                self._answered(answer)
                measured |= {frozenset(tuple(h) for h in heads): by_role
                             for heads, by_role in answer["measured"]}
        return self.prober.name_specialists(self.params, self.last_probe, thresholds, measured)
