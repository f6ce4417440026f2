"""The same run as a factual log: one line per moment (plus start and end), numbers only."""

from __future__ import annotations

from fabric_cli.narrate.facts import collect
from fabric_cli.narrate.format import as_float, count, head_name, sig, step
from fabric_cli.typeset import quoted

_STEPS = {"start_step", "end_step", "previous_step", "last_good_step", "knock_step", "steps",
          "checkpoint_step"}


def _value(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "none"
    if key in _STEPS or key == "count":
        return step(value)
    if isinstance(value, (int, float)) or value in ("nan", "inf", "-inf"):
        return sig(value)
    if isinstance(value, str):
        return quoted(value) if key == "sentence" else repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} {_value(k, v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        if all(isinstance(x, list) and len(x) == 2 for x in value):
            return "[" + ", ".join(head_name(int(x[0]), int(x[1])) for x in value) + "]"
        return "[" + ", ".join(_value("", x) for x in value) + "]"
    return str(value)


def plain_log(events: list[dict]) -> list[str]:
    run = collect(events)
    s = run.start
    floor = s.get("floor") or {}
    lines = [
        (f"step {step(s.get('step', 0)):>7}  run_start  scenario {s.get('scenario')!r}, "
        f"seed {s.get('seed')}, {count(s.get('n_params', 0))} parameters, "
        f"vocabulary {count(len(run.vocab))}, floor {sig(floor.get('train'))} train / "
        f"{sig(floor.get('heldout'))} held-out"),
    ]
    told: list[tuple[float, int, str]] = []  # (step, order at that step, line)
    for m in run.moments:
        who = ""
        if m.get("layer") is not None and m.get("head") is not None:
            who = f" {head_name(m['layer'], m['head'])}"
        fields = dict(m.get("data") or {})
        line = as_float(run.training.get("grad_clip"))
        if m.get("kind") == "clipping_burst" and "clip" in fields and line > 0:
            fields["clip"] = line  # the run's line, not the norm its last cut left (0.999999)
        data = ", ".join(f"{k} {_value(k, v)}" for k, v in fields.items())
        told.append((_at(m), 0, f"step {step(m.get('step', 0)):>7}  {m.get('kind')} "
                                f"({m.get('component')}){who}  {data}"))
    told += _stops(events)
    told.sort(key=lambda t: t[:2])  # stable: moments at one step keep their order
    lines += [line for _, _, line in told]
    if run.clipped_steps:
        lines.append(f"{'':>12}  clipped steps in all: {count(len(run.clipped_steps))}")
    if run.end is not None:
        e = run.end
        specs = ", ".join(f"{head_name(x['layer'], x['head'])} {x.get('role')}"
                          for x in e.get("specialists") or []) or "none"
        window = run.train_window(run.last_probe)  # the steps the train figure averages
        mean = f" (mean of steps {step(window[0])} to {step(window[1])})" if window else ""
        lines.append(
            f"step {step(e.get('step', 0)):>7}  run_end  {e.get('status')}, "
            f"{step(e.get('steps', 0))} steps in {sig(e.get('seconds'))} s, {_final(run, e)} "
            f"{sig(e.get('final_train_loss'))} train{mean} / {sig(e.get('final_val_loss'))} "
            "validation, "
            f"specialists: {specs}"
        )
    return lines


def _final(run, end: dict) -> str:
    """What the run_end's losses are: the last probe's, which is the final step's only when
    the run finished (a diverged or stopped run's last probe came before its end)."""
    probes = [p for p in run.probes if as_float(p.get("step")) <= as_float(end.get("step"))]
    if not probes or end.get("status") == "finished" and probes[-1].get("step") == end.get("step"):
        return "final loss"
    return f"loss at the last probe (step {step(probes[-1].get('step', 0))})"


def _stops(events: list[dict]) -> list[tuple[float, int, str]]:
    """Every interruption and every resume, at the step it happened (a chronicle may hold
    several; the last one is not news after the end)."""
    told = []
    stopped = 0.0  # a resume is told after the interruption it resumed from
    for e in events:
        at = f"step {step(e.get('step', 0)):>7}"
        if e.get("type") == "interrupted":
            stopped = _at(e)
            told.append((stopped, 1, f"{at}  interrupted  reason {e.get('reason')!r}, "
                                     f"checkpoint at step {step(e.get('checkpoint_step', 0))}"))
        elif e.get("type") == "run_start" and e.get("resumed_from") is not None:
            told.append((max(_at(e), stopped), 2, f"{at}  resumed  from the checkpoint at "
                                                  f"step {step(e.get('resumed_from'))}"))
    return told


def _at(event: dict) -> float:
    x = as_float(event.get("step", 0))
    return x if x == x else 0.0  # a step that is not a number sorts first, as step 0 prints
