"""Each hardship really happens, measured against its twin, on shortened versions of the
bundled scenarios (the tiny language and a small Fabric, so each pair trains in seconds)."""

from __future__ import annotations

import itertools
import tomllib
from pathlib import Path

import pytest

from fabric_cli.analysis.compare import load_run, run_summary
from fabric_cli.scenario import load_scenario, parse_scenario, scenarios_dir
from fabric_cli.training.trainer import Trainer


def shortened(name: str, **changes):
    """Bundled scenario `name`'s switches on the tiny language, sized to train in seconds:
    its [model] and [training] keys over tiny's, then `changes` ("training.lr" = …)."""
    tiny = tomllib.loads((scenarios_dir() / "tiny.toml").read_text())
    own = tomllib.loads((scenarios_dir() / f"{name}.toml").read_text())
    for table in ("model", "training"):
        switches = {k: v for k, v in own.get(table, {}).items()
                    if k in ("residual", "layernorm", "optimizer", "momentum", "grad_clip",
                             "dropout", "attn_dropout", "n_layers", "lr", "weight_decay")}
        tiny[table].update(switches)
    for dotted, value in changes.items():
        table, key = dotted.split(".")
        tiny[table][key] = value
    return parse_scenario(tiny, f"{name} (shortened)", Path(f"{name}-short.toml"))


def summary(scenario, run_dir: Path, steps: int) -> dict:
    trainer = Trainer(scenario, run_dir, steps=steps)
    trainer.prepare()
    trainer.run()
    return run_summary(load_run(run_dir), scenario.name)


def test_bundled_hardships_take_one_thing_away_from_the_default():
    default = load_scenario("pronouns")
    assert not load_scenario("adrift").model.residual
    assert load_scenario("adrift").model.n_layers >= 8
    storm = load_scenario("storm").training
    assert storm.grad_clip == 0 and storm.lr >= 100 * default.training.lr
    assert load_scenario("no-adam").training.optimizer == "sgd"
    assert load_scenario("no-layernorm").model.layernorm == "none"
    no_drop = load_scenario("no-dropout").training
    assert no_drop.dropout == 0 and no_drop.attn_dropout == 0
    heavy = load_scenario("heavy-dropout").training
    assert heavy.dropout > default.training.dropout
    twelve = load_scenario("twelve-layers").model
    assert (twelve.n_layers, twelve.d_model) == (12, 64) and twelve.n_heads >= 8
    for name in ("adrift", "storm", "no-adam", "no-layernorm", "no-dropout", "heavy-dropout"):
        assert load_scenario(name).grammar == default.grammar, name


def test_adrift_the_gradient_fades_by_orders_of_magnitude_without_the_residual(tmp_path):
    size = {"model.n_layers": 6, "model.d_model": 16, "model.d_mlp": 32, "model.n_heads": 2}
    adrift = summary(shortened("adrift", **size), tmp_path / "adrift", steps=40)
    twin = summary(shortened("adrift", **size, **{"model.residual": True}), tmp_path / "twin",
                   steps=40)
    ratio, twin_ratio = adrift["gradient"]["ratio_median"], twin["gradient"]["ratio_median"]
    assert ratio < twin_ratio / 100, (ratio, twin_ratio)
    # and it fades at every layer on the way down
    per = [row["arriving"] for row in adrift["gradient"]["per_layer"]]
    assert all(lower < upper for lower, upper in itertools.pairwise(per)), per


def test_storm_diverges_without_clipping_and_survives_with_it(tmp_path):
    gale = {"training.lr": 1.0, "model.n_layers": 3}  # the storm file's own depth (the default's)
    storm = summary(shortened("storm", **gale), tmp_path / "storm", steps=150)
    assert storm["status"] == "diverged"
    d = storm["divergence"]
    # caught within one step: the step that tore is the one after the last recorded step,
    # and the checkpoint kept is the last good probe's
    assert d["step"] == storm["steps"] + 1 and d["last_good_step"] <= storm["steps"]
    calm = summary(shortened("storm", **gale, **{"training.grad_clip": 1.0}),
                   tmp_path / "calm", steps=150)
    assert calm["status"] == "finished" and calm["divergence"] is None
    assert calm["clipping"]["count"] > 0
    assert calm["clipping"]["max_norm"] > 1.0


def test_no_adam_sgd_reaches_the_pronoun_bar_later_than_adamw_or_never(tmp_path):
    sgd = summary(shortened("no-adam"), tmp_path / "sgd", steps=200)
    adamw = summary(shortened("no-adam", **{"training.optimizer": "adamw", "training.lr": 3e-3}),
                    tmp_path / "adamw", steps=200)
    adam_step = (adamw["roles"].get("pronoun") or {}).get("threshold_step")
    sgd_step = (sgd["roles"].get("pronoun") or {}).get("threshold_step")
    assert adam_step is not None
    assert sgd_step is None or sgd_step > adam_step


def test_no_layernorm_the_stream_grows_more_from_bottom_to_top(tmp_path):
    size = {"model.n_layers": 4, "model.d_model": 16, "model.d_mlp": 32, "model.n_heads": 2}
    bare = summary(shortened("no-layernorm", **size), tmp_path / "bare", steps=60)
    twin = summary(shortened("no-layernorm", **size, **{"model.layernorm": "pre"}),
                   tmp_path / "twin", steps=60)
    for run in (bare, twin):
        assert run["stream"]["source"] == "probe" and len(run["stream"]["scale"]) == 5

    def growth(run):
        return run["stream"]["scale"][-1] / run["stream"]["scale"][0]
    assert growth(bare) > growth(twin), (bare["stream"], twin["stream"])


@pytest.mark.parametrize("name", ["no-dropout", "heavy-dropout"])
def test_dropout_scenarios_measure_the_mask_only_when_there_is_one(tmp_path, name):
    run = summary(shortened(name), tmp_path / name, steps=30)
    focus = run["pronoun"]["focus"]
    if name == "no-dropout":
        assert focus is None
    else:
        assert focus is not None and 0 <= focus["dropped"] <= 1


def test_dropout_grows_backups_and_a_resolution_that_survives_a_mask(tmp_path):
    """Heavy Dropout against none, one layer of four heads, long enough for both to resolve
    every pronoun: under cuts more heads come near the best tracker's pronoun score, and,
    cut alike by the probes' fixed mask, the Fabric trained under cuts still resolves them
    (measured on seeds 0-3 at 1200 steps: 3-4 heads against 1; 99-100% against 80-95%)."""
    four = {"model.n_heads": 4}
    heavy = summary(shortened("heavy-dropout", **four), tmp_path / "heavy", steps=1200)
    bare = summary(shortened("heavy-dropout", **four, **{"training.dropout": 0.0,
                                                         "training.attn_dropout": 0.0}),
                   tmp_path / "bare", steps=1200)
    assert len(heavy["pronoun"]["near_best"]) > len(bare["pronoun"]["near_best"])
    cut, uncut = heavy["pronoun"]["mask_test"], bare["pronoun"]["mask_test"]
    assert cut["rate"] == uncut["rate"] == 0.3
    assert cut["clean"] == uncut["clean"] == 1.0  # both learned; the mask is the difference
    assert cut["masked"] >= uncut["masked"] + 0.05, (cut, uncut)
