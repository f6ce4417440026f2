"""A trained run opened in the real TransformerLens computes what fabric computes: attention
patterns and logits within 1e-4. Needs the optional extra (`pip install ".[lens]"`); skipped
cleanly without it."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from cli_helpers import invoke, one_line_error

from fabric_cli.analysis.runs import load_checkpoint
from fabric_cli.nn.model import Capture, forward

SENTENCES = ["The queen met the king and she ruled .",
             "The pilot saw the nurse with his map ."]


def test_export_writes_transformer_lens_names_without_transformer_lens(tiny_run_master,
                                                                      tmp_path):
    out = tmp_path / "tl"
    result = invoke("export", [str(tiny_run_master), "--to", "transformer-lens", str(out)])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    ckpt = load_checkpoint(tiny_run_master)
    for key in ("n_layers", "n_heads", "d_model", "d_head", "d_mlp", "n_ctx", "d_vocab",
                "act_fn", "normalization_type"):
        assert config[key] == getattr(ckpt.cfg, key), key
    assert config["initializer_range"] == ckpt.cfg.init_range
    assert (config["eps"], config["attention_dir"], config["positional_embedding_type"],
            config["d_vocab_out"]) == (1e-5, "causal", "standard", ckpt.cfg.d_vocab)
    assert "init_range" not in config and "fabric" not in config
    again = invoke("export", [str(tiny_run_master), "--to", "transformer-lens", str(out)])
    assert again.exit_code == 0  # its own earlier export may be replaced
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("x")
    line = one_line_error(invoke("export", [str(tiny_run_master), "--to", "transformer-lens",
                                            str(tmp_path / "full")]))
    assert "not empty" in line


def test_export_again_keeps_what_the_user_put_in_its_directory(tiny_run_master, tmp_path):
    out, theirs = tmp_path / "tl", tmp_path / "my-config.json"
    args = [str(tiny_run_master), "--to", "transformer-lens", str(out)]
    assert invoke("export", args).exit_code == 0
    theirs.write_text("{}")
    (out / "config.json").unlink()
    (out / "config.json").symlink_to(theirs)  # the user's own config, linked in
    (out / "notes.md").write_text("mine")
    line = one_line_error(invoke("export", args))
    assert f"{out / 'config.json'} is not a file fabric wrote" in line
    assert (out / "config.json").is_symlink() and theirs.read_text() == "{}"
    (out / "config.json").unlink()
    assert invoke("export", args).exit_code == 0
    assert (out / "notes.md").read_text() == "mine"


def test_an_export_cut_short_by_a_full_disk_can_be_exported_again(tiny_run_master, tmp_path,
                                                                   monkeypatch):
    import errno

    from fabric_cli.analysis import export

    out = tmp_path / "tl"
    real = export.atomic_write_bytes
    written = []

    def full_after_two_files(path, data):
        if len(written) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(path.name)
        real(path, data)

    monkeypatch.setattr(export, "atomic_write_bytes", full_after_two_files)
    args = [str(tiny_run_master), "--to", "transformer-lens", str(out)]
    assert "No space left on device" in one_line_error(invoke("export", args))
    monkeypatch.setattr(export, "atomic_write_bytes", real)  # space freed: the same command
    result = invoke("export", args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [".fabric-export", "config.json",
                                                     "model.safetensors", "vocab.json"]


def test_export_to_a_link_looping_on_itself_is_one_line(tiny_run_master, tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    line = one_line_error(invoke("export", [str(tiny_run_master), "--to", "transformer-lens",
                                            str(loop)]))
    assert "a link that never reaches a directory" in line and loop.is_symlink()


def test_infer_json_logits_are_the_models_logits(tiny_run_master):
    result = invoke("infer", [SENTENCES[0], "--run", str(tiny_run_master), "--json",
                              "--logits"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    ckpt = load_checkpoint(tiny_run_master)
    expected = forward(ckpt.params, ckpt.cfg, np.asarray([doc["token_ids"]])).logits[0]
    assert np.array_equal(np.asarray(doc["logits"]["rows"], dtype=np.float32), expected)
    assert len(doc["logits"]["vocab"]) == ckpt.cfg.d_vocab
    assert "logits" not in json.loads(invoke("infer", [SENTENCES[0], "--run",
                                                       str(tiny_run_master), "--json"]).stdout)


@pytest.mark.parametrize("source", ["run", "export"])
def test_transformer_lens_computes_what_fabric_computes(tiny_run_master, tmp_path, source):
    if not os.environ.get("FABRIC_REQUIRE_LENS"):  # .ci/run sets it: there it must run
        pytest.importorskip("torch")
        pytest.importorskip("transformer_lens")
    import torch

    from fabric_cli.lens import load_transformer_lens

    path = tiny_run_master
    if source == "export":
        path = tmp_path / "tl"
        assert invoke("export", [str(tiny_run_master), "--to", "transformer-lens",
                                 str(path)]).exit_code == 0
    model = load_transformer_lens(path)
    ckpt = load_checkpoint(tiny_run_master)
    for sentence in SENTENCES:
        doc = json.loads(invoke("infer", [sentence, "--run", str(tiny_run_master), "--json",
                                          "--logits"]).stdout)
        ids = doc["token_ids"]
        with torch.no_grad():
            logits, cache = model.run_with_cache(torch.tensor([ids]))
        ours = forward(ckpt.params, ckpt.cfg, np.asarray([ids]), capture=Capture(attention=True))
        theirs = logits[0].numpy()
        assert np.abs(theirs - np.asarray(doc["logits"]["rows"])).max() <= 1e-4
        assert (np.argsort(-theirs, axis=-1)[:, :5] == np.argsort(-ours.logits[0], axis=-1)
                [:, :5]).all()
        for layer in range(ckpt.cfg.n_layers):
            pattern = cache[f"blocks.{layer}.attn.hook_pattern"][0].numpy()
            assert np.abs(pattern - ours.attention[layer][0]).max() <= 1e-4
            for head in range(ckpt.cfg.n_heads):
                mine = np.asarray(doc["attention"][f"{layer}.{head}"])
                assert np.abs(pattern[head] - mine).max() <= 1e-4
