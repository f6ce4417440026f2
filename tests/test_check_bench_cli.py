"""`fabric check` and `fabric bench` as a user runs them."""

import json

from typer.testing import CliRunner

from fabric_cli.cli import app
from fabric_cli.nn.config import ModelConfig
from fabric_cli.nn.model import param_shapes

runner = CliRunner()


def test_check_passes_and_names_every_parameter():
    result = runner.invoke(app, ["check"], env={"COLUMNS": "140", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    cfg = ModelConfig(n_layers=2, n_heads=2, d_model=8, d_head=4, d_mlp=16, n_ctx=6, d_vocab=11)
    for name in param_shapes(cfg):
        assert name in result.output
    assert "attention: dx" in result.output and "adamw" in result.output
    assert "sgd" in result.output and "momentum" in result.output
    assert "residual off, LayerNorm off, dropout masks" in result.output
    assert "FAIL" not in result.output and "\x1b[" not in result.output


def test_check_json_lists_every_check_with_its_error():
    result = runner.invoke(app, ["check", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert {"check", "kind", "elements", "max_rel_error", "passed"} <= set(rows[0])
    assert {r["kind"] for r in rows} == {"parameter", "layer input", "optimizer"}
    assert all(r["passed"] and r["max_rel_error"] <= 1e-6 for r in rows)
    # every switch combination checks every one of its parameter tensors, and says which
    combos = {}
    for r in rows:
        if r["kind"] == "parameter":
            combos.setdefault(r["combination"], []).append(r)
    assert len(combos) == 8
    for label, group in combos.items():
        s = group[0]["switches"]
        cfg = ModelConfig(n_layers=2, n_heads=2, d_model=8, d_head=4, d_mlp=16, n_ctx=6,
                          d_vocab=11, residual=s["residual"],
                          normalization_type="LN" if s["layernorm"] else None)
        assert [r["check"] for r in group] == list(param_shapes(cfg)), label
        assert f"residual {'on' if s['residual'] else 'off'}" in label
    methods = {label: {r["method"] for r in g} for label, g in combos.items()}
    assert methods.pop("residual on, LayerNorm on, dropout masks") == {"every element"}
    assert all(m == {"random direction"} for m in methods.values())
    assert {r["check"].split(":")[0] for r in rows if r["kind"] == "optimizer"} == {
        "adamw", "sgd", "momentum"}


def test_bench_json_reports_speed_with_self_explaining_keys():
    args = ["bench", "--repeats", "2", "--json", "--n-layers", "1", "--d-model", "16",
            "--batch", "2", "--seq-len", "4", "--vocab", "10"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ("ms_per_step", "tokens_per_second", "gflops_per_second",
                "peak_gflops_per_second", "fraction_of_peak", "flops_per_step"):
        assert data[key] > 0
    assert data["tokens_per_step"] == 8 and data["shape"]["d_mlp"] == 64
    assert data["cpu_ms_per_step"] > 0 and "blas_threads" in data
    tried = data["blas_threads_tried_ms"]
    if data["blas_threads"] is None:  # a BLAS whose thread count cannot be read or set
        assert tried == {}
    else:  # even a tiny step is timed at both counts, and the faster is the one used
        assert set(tried) == {"1", "2"}
        assert tried[str(data["blas_threads"])] == min(tried.values())
    assert data["tokens_per_second"] == data["tokens_per_step"] / (data["ms_per_step"] / 1e3)


def test_bench_takes_a_thread_count_and_refuses_a_bad_one_in_one_line():
    args = ["bench", "--repeats", "1", "--json", "--n-layers", "1", "--d-model", "16",
            "--batch", "2", "--seq-len", "4", "--vocab", "10", "--threads", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    threads = json.loads(result.stdout)["blas_threads"]
    assert threads in (1, None)  # None: a BLAS whose thread count cannot be read
    bad = runner.invoke(app, ["bench", "--threads", "many"])
    assert bad.exit_code == 2 and "--threads" in bad.output and "Traceback" not in bad.output


def test_bench_refuses_a_count_of_steps_that_would_never_end():
    result = runner.invoke(app, ["bench", "--repeats", "99999999999"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--repeats must be from 1 to 10,000, got 99,999,999,999" in result.output


def test_bench_rejects_an_impossible_shape_in_one_line():
    result = runner.invoke(app, ["bench", "--d-model", "10", "--n-heads", "4"])
    assert result.exit_code == 2
    assert "divisible" in result.output and "Traceback" not in result.output


def test_bench_refuses_a_shape_too_big_before_allocating_it(monkeypatch):
    """Not a MemoryError called a bug, nor the system killing fabric (or its neighbours)."""
    from fabric_cli import limits

    result = runner.invoke(app, ["bench", "--d-model", "100000"])
    assert result.exit_code == 2, result.output
    assert "--d-model must be at most 8,192, got 100,000" in result.output
    monkeypatch.setattr(limits, "available_memory", lambda: 2 * limits.GIB)
    result = runner.invoke(app, ["bench", "--batch", "8192", "--seq-len", "512"])
    assert result.exit_code == 2, result.output
    assert "GiB of memory" in result.output and "--batch" in result.output
    assert "internal error" not in result.output
