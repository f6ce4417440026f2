"""Checkpoints: exact round trips and one clear error per broken file."""

import json

import numpy as np
import pytest

from fabric_cli.analysis.runs import (
    atomic_write_json,
    load_checkpoint,
    rng_from_state,
    rng_state,
    save_checkpoint,
)
from fabric_cli.errors import FabricError
from fabric_cli.nn.config import ModelConfig
from fabric_cli.nn.model import backward, forward, init_params
from fabric_cli.nn.optim import AdamW

CFG = ModelConfig(n_layers=1, n_heads=2, d_model=8, d_head=4, d_mlp=16, n_ctx=6, d_vocab=11)


def step(params, opt, rng):
    tokens = rng.integers(0, CFG.d_vocab, (4, 6))
    targets = rng.integers(-1, CFG.d_vocab, (4, 6))
    grads, _ = backward(forward(params, CFG, tokens, targets, dropout=0.2, rng=rng))
    opt.step(params, grads, 1e-2)


def start():
    rng = np.random.default_rng(0)
    params = init_params(CFG, rng)
    opt = AdamW(params, lr=1e-2, weight_decay=0.1)
    for _ in range(3):
        step(params, opt, rng)
    return params, opt, rng


@pytest.fixture
def saved(tmp_path):
    params, opt, rng = start()
    save_checkpoint(tmp_path / "run", CFG, params, opt, step=3,
                    rng_states={"data": rng_state(rng)}, extra={"scenario": "pronouns"})
    return tmp_path / "run"


def test_resuming_from_a_checkpoint_is_bitwise_identical_to_never_stopping(saved):
    params, opt, rng = start()
    for _ in range(3):
        step(params, opt, rng)

    ck = load_checkpoint(saved, with_optimizer=True)
    assert ck.cfg == CFG and ck.step == 3 and ck.extra == {"scenario": "pronouns"}
    resumed_opt = AdamW(ck.params, lr=1e-2, weight_decay=0.1)
    resumed_opt.load_state_arrays(ck.optimizer_arrays, ck.optimizer_t)
    resumed_rng = rng_from_state(ck.rng_states["data"])
    for _ in range(3):
        step(ck.params, resumed_opt, resumed_rng)
    assert all(np.array_equal(params[n], ck.params[n]) for n in params)
    assert [p.name for p in saved.iterdir() if p.name.startswith(".")] == []  # no temp files


def test_files_hold_the_documented_layout(saved):
    assert json.loads((saved / "config.json").read_text())["d_model"] == 8
    assert (saved / "checkpoint").resolve() == saved / "step-000003"
    state = json.loads((saved / "checkpoint" / "trainer_state.json").read_text())
    assert state["step"] == 3 and state["optimizer_t"] == 3
    assert load_checkpoint(saved).optimizer_arrays is None


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "optimizer.safetensors",
                                  "trainer_state.json"])
@pytest.mark.parametrize("damage", ["missing", "truncated", "garbage"])
def test_a_broken_file_is_named_in_one_clear_error(saved, name, damage):
    path = saved / "checkpoint" / name
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    else:
        path.write_bytes(b"\x00\xffnot a checkpoint at all")
    with pytest.raises(FabricError) as err:
        load_checkpoint(saved, with_optimizer=True)
    assert name in err.value.message and "\n" not in err.value.message


def test_weights_that_do_not_match_config_are_refused(saved):
    config = json.loads((saved / "config.json").read_text())
    config["d_mlp"] = 32
    atomic_write_json(saved / "checkpoint" / "config.json", config)
    with pytest.raises(FabricError, match=r"model\.safetensors: .*W_in has shape \[8, 16\]"):
        load_checkpoint(saved)


def test_files_from_different_steps_are_refused(saved):
    params, opt, _rng = start()
    save_checkpoint(saved, CFG, params, opt, step=1400, rng_states={})
    model_bytes = (saved / "model.safetensors").read_bytes()
    save_checkpoint(saved, CFG, params, opt, step=1399, rng_states={})
    (saved / "checkpoint" / "model.safetensors").write_bytes(model_bytes)  # files mixed by hand
    # steps read as everywhere else: with a thousands separator
    with pytest.raises(FabricError, match=r"model.safetensors: written at step 1,400 but "
                                          r"trainer_state.json says step 1,399 "):
        load_checkpoint(saved)


def test_what_to_type_after_a_stop_names_a_long_runs_checkpoint_as_the_views_do(saved):
    from types import SimpleNamespace

    from fabric_cli.training.trainer import Trainer

    params, opt, _rng = start()
    save_checkpoint(saved, CFG, params, opt, step=1400, rng_states={})
    hint = Trainer.resume_hint(SimpleNamespace(run_dir=saved))
    assert hint.startswith("the checkpoint of step 1,400 is kept; resume with: fabric train")


def test_missing_run_dir_and_damaged_rng_state(tmp_path):
    with pytest.raises(FabricError, match="no such run directory"):
        load_checkpoint(tmp_path / "nope")
    with pytest.raises(FabricError, match="random generator"):
        rng_from_state({"bit_generator": "PCG64", "state": "broken"})
    with pytest.raises(FabricError, match="random generator"):
        rng_from_state({"bit_generator": "os.system"})
    gen = np.random.default_rng(9)
    gen.random(5)
    again = rng_from_state(json.loads(json.dumps(rng_state(gen))))
    assert np.array_equal(gen.random(8), again.random(8))
