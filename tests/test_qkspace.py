"""The query/key map (analysis/qkspace.py, views/qkspace.py, `fabric heads --qk`): its
coordinates are the raw vectors projected on the plane its docs describe, its alignment
numbers are qk_alignment's, and the scatter puts each glyph where its point lies."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from cli_helpers import invoke as cli_invoke
from cli_helpers import one_line_error
from synthetic_runs import PRONOUN_HEAD, build_run, write_chronicle

from fabric_cli.analysis.measures import qk_alignment, stream_forward
from fabric_cli.analysis.probes import build_probe_batch
from fabric_cli.analysis.qkspace import PICTURE_PRONOUNS, qk_frames, qk_space
from fabric_cli.language.corpus import Corpus
from fabric_cli.nn.model import init_params
from fabric_cli.scenario import load_scenario
from fabric_cli.views.qkspace import ANTECEDENT, BOTH, OTHER, QUERY, cell, grid, scale


@pytest.fixture(scope="module")
def measured():
    corpus = Corpus(load_scenario("tiny"))
    cfg = corpus.model_config()
    params = init_params(cfg, np.random.default_rng(3), dtype=np.float64)
    rng = np.random.default_rng(5)
    params = {k: v + rng.normal(0, 0.3, v.shape) for k, v in params.items()}
    pb = build_probe_batch(corpus.probe_set("train")[:16], corpus.batch)
    streams = stream_forward(params, cfg, pb.tokens)
    return cfg, pb, streams, qk_space(streams, pb)


def _raw(streams, pb, layer, head):
    """Queries, antecedent keys and other keys of the first pronouns, straight from the
    stream (the sites chosen as the docs say: words before the pronoun besides the antecedent
    and <bos>)."""
    q, k = streams.q[layer][:, head], streams.k[layer][:, head]
    qs, ants, others = [], [], []
    for b, p, a in zip(pb.pron_b, pb.pron_q, pb.pron_k):
        rest = [j for j in range(1, p) if j != a]
        if not rest:
            continue
        qs.append(q[b, p])
        ants.append(k[b, a])
        others += [k[b, j] for j in rest]
        if len(qs) == PICTURE_PRONOUNS:
            break
    return np.array(qs), np.array(ants), np.array(others)


def test_every_heads_map_is_its_vectors_on_the_plane_of_mean_query_and_key_difference(measured):
    cfg, pb, streams, space = measured
    assert space["pronouns"] == PICTURE_PRONOUNS
    for layer, head in itertools.product(range(cfg.n_layers), range(cfg.n_heads)):
        qs, ants, others = _raw(streams, pb, layer, head)
        u = qs.mean(0) / np.linalg.norm(qs.mean(0))
        d = ants.mean(0) - others.mean(0)
        v = d - (d @ u) * u
        v /= np.linalg.norm(v)
        mine = space["heads"][f"{layer}.{head}"]
        for name, raw in (("queries", qs), ("antecedents", ants), ("others", others)):
            got = np.array(mine[name])
            want = np.stack([raw @ u, raw @ v], axis=1)
            assert got.shape == want.shape
            assert np.allclose(got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max())
        # x orders the keys as the mean query's scores do
        keys = np.concatenate([ants, others])
        xs = np.array(mine["antecedents"] + mine["others"])[:, 0]
        scores = keys @ qs.mean(0)
        far = np.abs(scores[:, None] - scores[None, :]) > 1e-2 * np.abs(scores).max()
        assert ((np.sign(xs[:, None] - xs[None, :]) == np.sign(scores[:, None]
                 - scores[None, :])) | ~far).all()
        # y separates them: the antecedents' mean sits above the others' mean
        assert np.mean(np.array(mine["antecedents"])[:, 1]) >= np.mean(
            np.array(mine["others"])[:, 1])
        points = np.concatenate([qs, ants, others])
        kept = ((points @ u) ** 2 + (points @ v) ** 2).sum() / (points ** 2).sum()
        assert np.isclose(mine["kept"], kept) and 0 < mine["kept"] <= 1


def test_the_maps_alignment_is_qk_alignments_own_numbers_for_every_head(measured):
    cfg, pb, streams, space = measured
    for layer, head in itertools.product(range(cfg.n_layers), range(cfg.n_heads)):
        want = qk_alignment(streams, pb, layer, head)
        got = space["heads"][f"{layer}.{head}"]["alignment"]
        for key in ("antecedent", "others", "gap"):
            assert np.isclose(got[key], want[key], rtol=1e-9, atol=1e-12)


def test_a_real_run_records_the_map_for_every_head_at_every_probe(tiny_run_master):
    lines = (tiny_run_master / "chronicle.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    probes = [e for e in events if e["type"] == "probe"]
    start = events[0]["model"]
    for probe in probes:
        heads = probe["qk_space"]["heads"]
        assert len(heads) == start["n_layers"] * start["n_heads"]
        best = probe["qk_alignment"]
        assert heads[f"{best['layer']}.{best['head']}"]["alignment"]["gap"] == best["gap"]
    frames = qk_frames(events, 0, 0)
    assert [f["step"] for f in frames] == [probes[0]["step"], probes[-1]["step"]]


def test_each_glyph_is_drawn_where_its_point_lies():
    space = {"queries": [[1.0, 0.0]], "antecedents": [[2.0, 1.0]], "others": [[-1.0, -1.0]]}
    rows = grid(space, 31, 11)
    where = {ch: (r, c) for r, row in enumerate(rows) for c, ch in enumerate(row)
             if ch in (QUERY, ANTECEDENT, OTHER, "+")}
    assert set(where) == {QUERY, ANTECEDENT, OTHER, "+"}
    (qr, qc), (ar, ac), (orow, oc), (zr, zc) = (where[g] for g in (QUERY, ANTECEDENT, OTHER,
                                                                    "+"))
    assert oc < zc < qc < ac  # left to right as x: -1, 0, 1, 2
    assert ar < zr == qr < orow  # top to bottom as y: 1, 0, 0, -1
    # one scale for both axes: a unit of y spans half as many rows as a unit of x columns
    assert (orow - zr) * 2 == pytest.approx(zc - oc, abs=1)
    frame = scale([[1.0, 0.0], [2.0, 1.0], [-1.0, -1.0]], 31, 11)
    assert cell((2.0, 1.0), frame) == (ar, ac)


def test_a_query_on_its_antecedents_key_is_drawn_as_both():
    rows = grid({"queries": [[1.0, 1.0]], "antecedents": [[1.0, 1.0]], "others": [[0.5, 0]]},
                21, 9)
    flat = "".join("".join(r) for r in rows)
    assert BOTH in flat and QUERY not in flat and ANTECEDENT not in flat


def _run(tmp_path, **kw):
    return write_chronicle(tmp_path / "runs" / "demo", build_run(0, **kw)).parent


@pytest.mark.parametrize("width", [80, 120])
def test_heads_qk_draws_early_beside_late_with_the_gap_under_each(tmp_path, width):
    run = _run(tmp_path)
    events = build_run(0)
    frames = qk_frames(events, *PRONOUN_HEAD)
    from cli_helpers import app, runner

    result = runner.invoke(app, ["heads", "--run", str(run), "--qk", "1.2"],
                           env={"COLUMNS": str(width), "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert all(len(line) <= width for line in out.splitlines())
    for frame in frames:
        assert f"step {frame['step']:,} · gap {frame['alignment']['gap']:.3g}" in out
    assert "a pronoun's query" in out and "its antecedent's key" in out
    assert "\x1b[" not in out  # NO_COLOR: the glyphs carry it


def test_heads_qk_on_an_older_chronicle_says_there_is_no_map(tmp_path):
    result = cli_invoke("heads", ["--run", str(_run(tmp_path, new_measures=False)), "--qk",
                                  "1.2"])
    assert result.exit_code == 0 and "no probe recorded" in result.output


def test_heads_qk_before_the_first_probe_says_so_not_that_the_run_is_old(tmp_path):
    events = build_run(0)
    early = write_chronicle(tmp_path / "runs" / "early", [
        e for e in events if e["type"] not in ("probe", "run_end")][:3]).parent
    line = one_line_error(cli_invoke("heads", ["--run", str(early), "--qk", "1.2"]))
    assert "the chronicle has no probe yet; let `fabric train` run to its first probe" in line


def test_heads_qk_refuses_a_head_the_run_does_not_have(tmp_path):
    line = one_line_error(cli_invoke("heads", ["--run", str(_run(tmp_path)), "--qk", "7.0"]))
    assert "--qk 7.0" in line


def test_heads_qk_json_and_export(tmp_path):
    run = _run(tmp_path)
    result = cli_invoke("heads", ["--run", str(run), "--qk", "1.2", "--json"])
    doc = json.loads(result.output)
    assert [f["step"] for f in doc["frames"]] == [0, 300]
    svg = tmp_path / "qk.svg"
    result = cli_invoke("heads", ["--run", str(run), "--qk", "1.2", "--export", str(svg)])
    assert result.exit_code == 0 and svg.read_text().startswith("<svg")


@pytest.mark.parametrize("suffix", [".md", ".txt"])
def test_the_heads_story_export_carries_its_query_key_picture(tmp_path, suffix):
    from fabric_cli.commands.narrate import QK_HEADING

    run, out = _run(tmp_path), tmp_path / f"head{suffix}"
    result = cli_invoke("narrate", ["--run", str(run), "-c", "head", "--export", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    frames = qk_frames(build_run(0), *PRONOUN_HEAD)
    assert QK_HEADING in text and "a pronoun's query" in text
    assert all(f"step {f['step']:,} · gap {f['alignment']['gap']:.3g}" in text for f in frames)
    if suffix == ".md":  # the picture is a code block of at most 80 columns
        block = text.split("```")[1]
        assert max(len(line) for line in block.splitlines()) <= 80
    # an older chronicle: the story still exports, without a picture it cannot draw
    old, out2 = _run(tmp_path / "old", new_measures=False), tmp_path / f"old{suffix}"
    result = cli_invoke("narrate", ["--run", str(old), "-c", "head", "--export", str(out2)])
    assert result.exit_code == 0 and QK_HEADING not in out2.read_text()
    assert "Random Beginnings" in out2.read_text()


def test_the_plane_is_orthonormal_even_when_antecedent_and_other_keys_look_alike():
    from fabric_cli.analysis.qkspace import plane

    rng = np.random.default_rng(1)
    q = rng.normal(size=(4, 8))
    keys = rng.normal(size=(6, 8))
    for ants, others in ((keys[:3], keys[3:]), (keys[:3], keys[:3]),
                         (np.outer([1, 2, 3], q.mean(0)), np.outer([1, 2, 3], q.mean(0)))):
        basis = plane(q, ants, others)
        assert np.allclose(basis @ basis.T, np.eye(2), atol=1e-9)
        assert np.allclose(basis[0], q.mean(0) / np.linalg.norm(q.mean(0)))
