"""The Trainer: the loop that weaves the Fabric, and the events it tells the world.

One step:  batch ─▶ forward ─▶ loss ─▶ backward ─▶ clip ─▶ AdamW ─▶ `step` event
Every K steps: probes on fixed annotated sentences ─▶ `probe` event, moments, checkpoint.
  (The probe runs in its own process on the second core while training goes on; the steps
  trained meanwhile are told after it, so the chronicle reads as if the loop had waited:
  training/probe_worker.py.)
At the end: ablation names the specialists ─▶ `specialist` moments, `ablation`, `run_end`.

The loop never draws. Subscribers (callables taking one event dict) receive every event after
it is written to the chronicle; the CLI's live picture is one of them (minGPT's callbacks).
Ctrl-C only raises a flag (`request_stop`); the loop stops between steps, so a checkpoint is
never taken of a half-applied update.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fabric_cli.analysis import rundir, runs, weights
from fabric_cli.errors import FabricError
from fabric_cli.language.corpus import Corpus
from fabric_cli.limits import MAX_SEED, MAX_STEPS
from fabric_cli.nn.batch_halves import backward_step, forward_step
from fabric_cli.nn.bench import step_flops
from fabric_cli.nn.blas import ThreadTuner
from fabric_cli.nn.model import Capture, init_params, param_shapes
from fabric_cli.nn.optim import clip_grad_norm, lr_at, make_optimizer
from fabric_cli.training.moments import make_moment
from fabric_cli.training.probe_flow import ProbeFlow, Snapshot
from fabric_cli.training.probe_worker import ProbeWorker

Subscriber = Callable[[dict], None]
CHRONICLE = "chronicle.jsonl"


@dataclass
class TimeSplit:
    """Where the run's seconds went; `drawing` is the subscribers' share. `probes` is what
    the loop spent on them (waiting included); `probes_beside` what the probe process spent
    on the second core while the loop trained on."""

    forward: float = 0.0
    backward: float = 0.0
    optimizer: float = 0.0
    probes: float = 0.0
    probes_beside: float = 0.0
    checkpoints: float = 0.0
    drawing: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in asdict(self).items()}


@dataclass
class RunResult:
    status: str  # finished | interrupted | diverged
    run_dir: Path
    steps: int
    seconds: float
    summary: dict = field(default_factory=dict)


class Trainer(ProbeFlow):
    def __init__(self, scenario, run_dir: Path, *, steps: int | None = None,
                 seed: int | None = None, subscribers: Iterable[Subscriber] = (),
                 probe_worker: bool = True) -> None:
        self.scenario = scenario
        self.run_dir = Path(run_dir)
        self.training = scenario.training
        self.total_steps = int(steps if steps is not None else self.training.steps)
        if not 1 <= self.total_steps <= MAX_STEPS:
            raise FabricError(f"--steps must be from 1 to {MAX_STEPS:,}, "
                              f"got {rundir.step_text(self.total_steps)}")
        self.seed = int(seed if seed is not None else scenario.seed)
        if not 0 <= self.seed <= MAX_SEED:
            raise FabricError(f"--seed must be a whole number from 0 to {MAX_SEED}, "
                              f"got {self.seed}")
        self.subscribers = list(subscribers)
        self.corpus = Corpus(scenario)
        self.cfg = self.corpus.model_config()
        # the BLAS thread count, chosen on rehearsal steps for large Fabrics (nn/blas.py)
        self.threads = ThreadTuner(step_flops(self.cfg, self.training.batch_size,
                                              self.cfg.n_ctx))
        self.times = TimeSplit()
        self._stop = False
        self.step = 0
        self.elapsed_before = 0.0  # seconds spent before a resume
        self.kept_threads: object = None  # the BLAS thread count a checkpoint trained on
        # set by prepare() (training/prepare.py)
        self.resumed_from: int | None = None  # the checkpoint's step when resumed
        self.last_good = 0  # the step of the last checkpoint whose probe was sound
        self.started_over = False  # resumed, but no checkpoint yet: from the beginning
        self.events_written = 0  # events in the chronicle (a checkpoint records how many)
        self.lock = None
        self.again: str | None = None  # `fabric why`'s runs: the command that trains it anew
        self.use_probe_worker = probe_worker
        self.worker: ProbeWorker | None = None
        self._pending: Snapshot | None = None  # the probe in flight, and its checkpoint
        self._held: list[dict] = []  # step events trained meanwhile, told after that probe
        self._slowest_answer = 0.0  # seconds: the worker's slowest answer (probe_flow.py)

    # -- control ---------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask the loop to stop after the current step (safe to call from a signal handler)."""
        self._stop = True

    # -- set-up ----------------------------------------------------------------------------
    def _fresh_state(self) -> None:
        init_seq, data_seq, drop_seq = np.random.SeedSequence(self.seed).spawn(3)
        self.params = init_params(self.cfg, np.random.default_rng(init_seq))
        self.data_rng = np.random.default_rng(data_seq)
        self.dropout_rng = np.random.default_rng(drop_seq)
        self.optimizer = self._make_optimizer()
        self.step = 0

    def _make_optimizer(self):
        t = self.training  # [training] optimizer = "adamw" | "sgd" | "momentum"
        return make_optimizer(t.optimizer, self.params, lr=t.lr, beta1=t.beta1, beta2=t.beta2,
                              weight_decay=t.weight_decay, momentum=t.momentum)

    def _resume_state(self) -> int:
        ckpt = runs.load_checkpoint(self.run_dir, with_optimizer=True)
        if ckpt.cfg != self.cfg:
            raise FabricError(
                f"{self.run_dir / 'config.json'}: the checkpoint's model does not match scenario "
                f"'{self.scenario.name}'; resume with the scenario it was trained on"
            )
        extra = ckpt.extra or {}
        self.seed = int(extra.get("seed", self.seed))
        self.total_steps = int(extra.get("total_steps", self.total_steps))
        self.elapsed_before = float(extra.get("elapsed", 0.0))
        self.kept_threads = extra.get("blas_threads")  # the count it trained on
        self.params = ckpt.params
        self.optimizer = self._make_optimizer()
        self.optimizer.load_state_arrays(ckpt.optimizer_arrays, ckpt.optimizer_t)
        for stream in ("data", "dropout"):
            if stream not in ckpt.rng_states:
                raise FabricError(f"{runs.TRAINER_STATE}: rng_states has no {stream!r} "
                                  f"generator; {runs.RETRAIN}")
        self.data_rng = runs.rng_from_state(ckpt.rng_states["data"])
        self.dropout_rng = runs.rng_from_state(ckpt.rng_states["dropout"])
        self.step = ckpt.step
        count = extra.get("events")  # events told when the checkpoint was taken
        return ckpt.step, count if isinstance(count, int) and count >= 0 else None

    def prepare(self, *, resume: bool = False, force: bool = False,
                flag: str = "--run-dir") -> None:
        """Check the run directory, take its lock, and load or create the state to train from
        (training/prepare.py); `flag` is the option a refusal tells the user to change."""
        from fabric_cli.training.prepare import prepare_run

        prepare_run(self, resume=resume, force=force, flag=flag)

    # -- events ----------------------------------------------------------------------------
    def emit(self, event: dict) -> dict:
        # Subscribers see the event exactly as the chronicle stores it (rounded, NaN as text),
        # so the live ticker and `fabric narrate` tell the same numbers.
        event = self.writer.emit(event)
        self.events_written += 1
        runs.crash_point("event")  # the kill tests' "any moment of a run"
        if self.subscribers:
            t0 = time.perf_counter()
            for subscriber in self.subscribers:
                subscriber(event)
            self.times.drawing += time.perf_counter() - t0
        return event

    def _emit_all(self, events: Iterable[dict]) -> None:
        for event in events:
            self.emit(event)

    def _run_start(self) -> dict:
        return {
            "type": "run_start", "step": self.step, "scenario": self.scenario.name,
            "scenario_path": str(self.scenario.path),
            "description": self.scenario.description, "seed": self.seed,
            "model": self.cfg.to_dict(),
            "training": {**asdict(self.training), "steps": self.total_steps},
            "n_params": int(sum(p.size for p in self.params.values())),
            "vocab": list(self.corpus.tokenizer.vocab),
            "floor": dict(self.corpus.floor),
            "story_sentences": list(self.scenario.probes.story_sentences),
            "resumed_from": self.resumed_from,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    # -- the loop --------------------------------------------------------------------------
    def _checkpoint(self, snapshot: Snapshot | None = None) -> None:
        """The state now, or as `snapshot` copied it when its probe was sent."""
        t0 = time.perf_counter()
        state = snapshot or self._snapshot(None)
        runs.save_checkpoint(
            self.run_dir, self.cfg, state.params, state, step=state.step,
            rng_states=state.rng_states,
            extra={"seed": self.seed, "total_steps": self.total_steps,
                   "scenario": self.scenario.name, "elapsed": state.elapsed,
                   "events": self.events_written, "blas_threads": self.threads.chosen,
                   "vocab": list(self.corpus.tokenizer.vocab)},
        )
        self.writer.sync()
        self.times.checkpoints += time.perf_counter() - t0

    def _choose_threads(self) -> None:
        """The BLAS thread count for the whole run: a resumed run keeps the one it trained on
        (a count can change the last bits of a step, nn/blas.py); a new run with a probe
        process beside it keeps one, the second core being that process's; any other new
        run times rehearsal steps, a forward and backward on a batch of their own that touch
        nothing of the run. Why one beside the probes: the twelve-layers run (seeds 0-2,
        scripts/bench_train.py) took 76 s where the rehearsals chose one thread, and 116 and
        125 s where they chose two: its steps in halves gained less than its probes lost,
        back in the loop (47-55 s of them, against 15 s waited for beside it)."""
        if not self.threads.active:
            return
        if isinstance(self.kept_threads, int) and self.threads.keep(self.kept_threads):
            return
        if self.worker is not None and self.worker.alive and self.threads.keep(1):
            return
        t = self.training
        tokens, targets = self.corpus.train_batch(np.random.default_rng(0), t.batch_size)

        def rehearsal() -> None:
            backward_step(forward_step(
                self.params, self.cfg, tokens, targets, dropout=t.dropout,
                attn_dropout=t.attn_dropout, rng=np.random.default_rng(1),
                capture=Capture(layernorm=True, dropout=True)), grad_flow=True)
        self.threads.rehearse(rehearsal)

    def _elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self._t_start)

    def _train_step(self) -> dict | None:
        """One update. Returns the step event, or None if the Fabric tore (non-finite)."""
        t = self.training
        tokens, targets = self.corpus.train_batch(self.data_rng, t.batch_size)
        t0 = time.perf_counter()
        result = forward_step(self.params, self.cfg, tokens, targets, dropout=t.dropout,
                              attn_dropout=t.attn_dropout, rng=self.dropout_rng,
                              capture=Capture(layernorm=True, dropout=True))
        t1 = time.perf_counter()
        self.times.forward += t1 - t0
        if not math.isfinite(result.loss):
            self._torn = {"loss": result.loss, "grad_norm": float("nan")}
            return None
        grads, flow = backward_step(result, grad_flow=True)
        t2 = time.perf_counter()
        self.times.backward += t2 - t1
        lr = lr_at(self.step, base_lr=t.lr, warmup_steps=t.warmup_steps,
                   total_steps=self.total_steps, min_lr_ratio=t.min_lr_ratio)
        norm_before, norm_after, clipped = clip_grad_norm(grads, t.grad_clip)
        if not math.isfinite(norm_before):
            self._torn = {"loss": result.loss, "grad_norm": norm_before}
            return None
        watch = weights.measured_step(self.step + 1, t.probe_every, self.total_steps)
        before = weights.attention_weights(self.params, self.cfg.n_layers) if watch else None
        ratios = self.optimizer.step(self.params, grads, lr, measure=True)
        self.times.optimizer += time.perf_counter() - t2
        self.step += 1
        event = {
            "type": "step", "step": self.step, "loss": result.loss, "lr": lr,
            "grad_norm": norm_before, "grad_norm_clipped": norm_after, "clipped": clipped,
            "grad_flow": flow, "grad_embed": flow[0]["leaving"] if flow else None,
            "update_ratio": ratios, "dropout_rate": t.dropout,
            "attn_dropout_rate": t.attn_dropout,
            "dropout_keep": result.dropout_keep, "layernorm": result.layernorm,
            "tokens": int((targets >= 0).sum()), "elapsed": self._elapsed(),
        }
        if before is not None:  # the first update and those landing on a probe (weights.py)
            event["weight_change"] = weights.head_changes(before, self.params, self.cfg.n_layers)
        return event

    def run(self) -> RunResult:
        # A tearing Fabric overflows inside numpy long before the loss reads nan; the loop
        # checks finiteness itself (_train_step), so numpy's warnings would only be noise on
        # the user's stderr.
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
                return self._run()
        except MemoryError:
            raise FabricError(f"out of memory at step {rundir.step_text(self.step)}; "
                              f"{self.resume_hint()}", exit_code=1) from None
        except FabricError as exc:  # a write refused (a full disk): say what is kept
            raise FabricError(f"{exc.message}; {self.resume_hint()}", exc.exit_code) from None
        finally:
            self.threads.restore()
            if self.worker is not None:
                self.worker.close()
            self.writer.close()
            if self.lock is not None:
                self.lock.release()

    def resume_hint(self) -> str:
        """What to type after the run stopped abruptly (the last whole checkpoint is kept)."""
        import shlex

        if getattr(self, "again", None) is not None:  # a lesson's run: trained anew
            return f"run `{self.again}` again to train it from the start"
        saved = rundir.current_step_dir(self.run_dir)
        again = f"fabric train --resume --run-dir {shlex.quote(str(self.run_dir))}"
        if saved is None:
            return f"no checkpoint was saved yet; start it again with: {again}"
        return (f"the checkpoint of step {rundir.step_text(rundir.step_of(saved))} is kept; "
                f"resume with: {again}")

    def _run(self) -> RunResult:
        self._t_start = time.perf_counter()
        self._torn: dict = {}
        if self.use_probe_worker:  # first: whether it runs decides the thread count
            t = self.training
            self.worker = ProbeWorker(self.scenario, self.cfg, dropout=t.dropout,
                                      attn_dropout=t.attn_dropout, seed=self.seed,
                                      shapes=param_shapes(self.cfg))
        self._choose_threads()
        self.emit(self._run_start())
        self.last_good = self.step  # a resumed run's checkpoint, or the first probe's
        if self.step == 0 and self.resumed_from is None:  # a resume at 0 has its probe@0
            self._probe()
        K = max(1, int(self.training.probe_every))
        while self.step < self.total_steps:
            if self._stop:
                return self._interrupted()
            event = self._train_step()
            if event is None:
                return self._diverged()
            self._tell_step(event)
            if self._pending is not None and self.worker.ready():
                self._settle()
            if self.step % K == 0 or self.step == self.total_steps:
                self._settle()
                self._probe()
        return self._finish()

    # -- endings ---------------------------------------------------------------------------
    def _interrupted(self) -> RunResult:
        self._settle()
        # told before the checkpoint, so the resumed run's chronicle keeps it
        self.emit({"type": "interrupted", "step": self.step, "reason": "ctrl-c",
                   "checkpoint_step": self.step})
        self._checkpoint()
        return self._end("interrupted")

    def _diverged(self) -> RunResult:
        self._settle()  # the last good checkpoint is written once its probe is told
        last_good = self.last_good
        lr = lr_at(self.step, base_lr=self.training.lr, warmup_steps=self.training.warmup_steps,
                   total_steps=self.total_steps, min_lr_ratio=self.training.min_lr_ratio)
        self._emit_all(self.detector.finish(self.step))
        self.emit(self.detector.on_divergence(self.step + 1, self._torn.get("loss"), lr,
                                              self._torn.get("grad_norm"), last_good))
        # The checkpoint on disk is the last good one (taken at step `last_good`); keep it.
        # Which number tore first: a finite loss can still give an overflowing gradient.
        loss = self._torn.get("loss")
        torn = "loss" if loss is None or not math.isfinite(loss) else "gradient"
        return self._end("diverged", checkpoint_step=last_good, extra={"non_finite": torn})

    def _finish(self) -> RunResult:
        t0 = time.perf_counter()
        self._final_streams = {}  # the final weights' clean streams, for all the loop's sets
        # while the last probe is measured beside the loop, the ablation's clean pass here
        clean = self._clean_silencing() if self._pending is not None else None
        self.times.probes += time.perf_counter() - t0
        self._settle()
        self._emit_all(self.detector.finish(self.step))
        t0 = time.perf_counter()
        rows, specialists = self._name_specialists(clean)
        self.times.probes += time.perf_counter() - t0
        self.emit({"type": "ablation", "step": self.step, "rows": rows})
        for sp in specialists:
            data = {k: v for k, v in sp.items() if k not in ("layer", "head")}
            self.emit(make_moment("specialist", self.step, "head", data,
                                  layer=sp["layer"], head=sp["head"]))
        self.specialists = specialists
        self._checkpoint()
        return self._end("finished")

    def _end(self, status: str, checkpoint_step: int | None = None,
             extra: dict | None = None) -> RunResult:
        probe = self.last_probe or {}
        summary = {
            "type": "run_end", "step": self.step, "status": status, "steps": self.step,
            "seconds": self._elapsed(),
            "final_train_loss": probe.get("train_loss"),
            "final_val_loss": probe.get("val_loss"),
            "floor": dict(self.corpus.floor),
            "specialists": getattr(self, "specialists", []),
            "time_split": self.times.as_dict(),
            "blas_threads": self.threads.report(),
            "checkpoint_step": self.step if checkpoint_step is None else checkpoint_step,
            **(extra or {}),
        }
        self.emit(summary)
        self.writer.sync()
        self.writer.close()
        return RunResult(status, self.run_dir, self.step, summary["seconds"], summary)


def fit_schedule(training, total_steps: int):
    """The scenario's schedule fitted to a run of `total_steps` (set by --steps): a warm-up as
    long as the run or longer keeps its share of the scenario's steps (so the cosine decay
    still happens), and probes come at least at the run's end."""
    warmup = training.warmup_steps
    if warmup >= total_steps:
        warmup = total_steps * warmup // max(training.steps, warmup + 1)
    return replace(training, steps=total_steps, warmup_steps=warmup,
                   probe_every=max(1, min(training.probe_every, total_steps)))
