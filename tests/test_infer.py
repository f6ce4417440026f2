"""`fabric infer` on a real (tiny) run: resolutions against agreement, numbers checked against an
independent forward pass, the head's account, ablation, hostile input and broken runs."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from cli_helpers import invoke as cli_invoke
from cli_helpers import one_line_error

from fabric_cli.analysis.inference import (
    heldout_resolution_rate,
    infer_sentence,
    inference_json,
    load_run,
)
from fabric_cli.errors import FabricError
from fabric_cli.narrate.format import pct, sig
from fabric_cli.narrate.inference import tell_inference
from fabric_cli.nn.model import Capture, forward

# Tiny scenario: professor/queen/nurse are feminine, king/pilot/farmer masculine.
SHE_PROFESSOR = "The king met the professor and she"


def invoke(args, **kw):
    return cli_invoke("infer", args, **kw)


@pytest.fixture(scope="module")
def tiny(tiny_run_master):
    return load_run(tiny_run_master)


def test_pronoun_resolves_to_the_agreeing_noun_not_the_nearest(tiny):
    inf = infer_sentence(tiny, SHE_PROFESSOR)
    (r,) = inf.resolutions
    assert inf.tokens[r.position] == "she"
    assert inf.tokens[r.antecedent] == "professor" and r.verdict == "correct"
    assert inf.tokens[r.attended] == "professor"
    assert r.expects_owner == "professor"
    # independent forward: the same head's row peaks on the same token with the same weight
    ids = np.asarray([inf.ids])
    res = forward(tiny.params, tiny.cfg, ids, capture=Capture(attention=True))
    row = res.attention[r.head[0]][0, r.head[1], r.position]
    assert int(row.argmax()) == r.attended
    assert row[r.attended] == pytest.approx(r.weight, rel=1e-5)
    # predictions are the softmax of the last logits, sorted
    logits = res.logits[0, r.position].astype(np.float64)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    top = inf.predictions[0].top
    assert top[0][0] == tiny.tokenizer.vocab[int(probs.argmax())]
    assert top[0][1] == pytest.approx(float(probs.max()), rel=1e-6)
    assert [p for _, p in top] == sorted([p for _, p in top], reverse=True)


def test_no_agreeing_noun_is_said_plainly_and_ambiguity_is_not_decided(tiny):
    none = infer_sentence(tiny, "The king met the pilot and she").resolutions[0]
    assert none.verdict == "no_agreeing_noun" and none.antecedent is None
    both = infer_sentence(tiny, "The queen met the professor and she").resolutions[0]
    assert both.verdict == "ambiguous" and both.antecedent is None and len(both.agreeing) == 2
    doc = inference_json(tiny, infer_sentence(tiny, "The king met the pilot and she"))
    story = " ".join(tell_inference(doc))
    assert "no noun" in story and "not invent" in story or "no noun that agrees" in story


def test_heldout_pairs_resolve_at_least_95_percent(tiny):
    rates = heldout_resolution_rate(tiny, n=60)
    assert rates["pronouns"] >= 30
    assert rates["attention"] >= 0.95 and rates["behaviour"] >= 0.95


def _numbers_in(doc) -> set[str]:
    """Every number of the document, written as the narrators write them."""
    found: set[str] = set()

    def walk(x):
        if isinstance(x, bool):
            return
        if isinstance(x, (int, float)):
            found.update({sig(x), pct(x), str(x)})
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk({k: v for k, v in doc.items() if k != "narration"})
    return found


@pytest.mark.parametrize("sentence, ablate", [
    (SHE_PROFESSOR, []),
    ("The queen saw the pilot with his", [(0, 1)]),
    ("The professor finished her lecture.", []),
    ("The zorblax met the king", [(0, 0)]),
])
def test_every_narrated_number_is_measured_and_the_story_is_repeatable(tiny, sentence, ablate):
    base = infer_sentence(tiny, sentence)
    ablated = infer_sentence(tiny, sentence, ablate=ablate) if ablate else None
    doc = inference_json(tiny, base, ablated=ablated)
    story = tell_inference(doc)
    assert story == tell_inference(json.loads(json.dumps(doc)))
    measured = _numbers_in(doc)
    text = " ".join(story)
    for number in re.findall(r"\d+(?:,\d{3})*(?:\.\d+)?%?", text):
        if re.fullmatch(r"\d", number):  # head and layer indices, token counts
            continue
        assert number in measured, (number, text)


def test_without_me_only_when_the_numbers_show_a_loss(tiny):
    specialist = tiny.tracker
    sentence = "The queen saw the pilot with his"
    doc = inference_json(tiny, infer_sentence(tiny, sentence),
                         ablated=infer_sentence(tiny, sentence, ablate=[specialist]))
    before = doc["resolutions"][0]["owner_mass"]["pilot"]
    after = doc["ablation"]["resolutions"][0]["owner_mass"]["pilot"]
    story = " ".join(tell_inference(doc))
    lost = before - after >= 0.05 or doc["ablation"]["resolutions"][0]["expects_owner"] != "pilot"
    assert lost, "the tiny specialist should matter (ablation in its run said so)"
    assert pct(before) in story and pct(after) in story
    other = next(h for h in range(tiny.cfg.n_heads) if (0, h) != specialist)
    doc2 = inference_json(tiny, infer_sentence(tiny, sentence),
                          ablated=infer_sentence(tiny, sentence, ablate=[(0, other)]))
    story2 = " ".join(tell_inference(doc2))
    assert "Without me" not in story2 and "Silence me" not in story2


NOT_ME = ("not me", "not I", "left me speaking", "I still speak")


def test_silencing_other_heads_is_told_once_and_in_good_grammar(tiny):
    other = next(h for h in range(tiny.cfg.n_heads) if (0, h) != tiny.tracker)
    told = {1: [], 2: []}
    for first in ("pilot", "professor", "nurse", "farmer"):
        sentence = f"The {first} met the king and she saw his"
        doc = inference_json(tiny, infer_sentence(tiny, sentence),
                             ablated=infer_sentence(tiny, sentence, ablate=[(0, other)]))
        told[1].append(tell_inference(doc)[-1])
        doc["ablation"]["heads"].append([1, 3])  # as a run with more heads would silence two
        told[2].append(tell_inference(doc)[-1])
    for n, paragraphs in told.items():
        for paragraph in paragraphs:
            assert sum(paragraph.count(words) for words in NOT_ME) == 1, paragraph
            assert paragraph.count(f"L0H{other}") == 1, paragraph  # named once, not per pronoun
    assert any(f"L0H{other} was silenced, not I" in p for p in told[1]), told[1]
    assert not any("were silenced" in p for p in told[1]), told[1]
    assert any(f"L0H{other} and L1H3 were silenced, not I" in p for p in told[2]), told[2]
    assert not any("was silenced" in p for p in told[2]), told[2]


def test_figures_that_print_the_same_are_told_as_staying_not_as_going_from_a_to_b(tiny):
    other = next(h for h in range(tiny.cfg.n_heads) if (0, h) != tiny.tracker)
    for me_silenced in (False, True):
        for first in ("pilot", "professor", "nurse", "farmer"):
            sentence = f"The {first} met the king and she saw his"
            silenced = tiny.tracker if me_silenced else (0, other)
            doc = inference_json(tiny, infer_sentence(tiny, sentence),
                                 ablated=infer_sentence(tiny, sentence, ablate=[silenced]))
            for b, a in zip(doc["ablation"]["resolutions"], doc["resolutions"], strict=False):
                b["owner_mass"] = dict(a["owner_mass"])  # the silence moved nothing at all
                b["expects_owner"] = a["expects_owner"]
            story = tell_inference(doc)[-1]
            assert not re.search(r"(\d+(?:\.\d+)?%) to \1", story), story  # "99.5% to 99.5%"
            assert "stayed at" in story or "kept" in story or "where it was" in story, story


def test_the_tracker_silenced_with_another_head_says_so_not_without_me_alone(tiny):
    other = next(h for h in range(tiny.cfg.n_heads) if (0, h) != tiny.tracker)
    sentence = "The pilot met the king and she saw his"
    doc = inference_json(tiny, infer_sentence(tiny, sentence),
                         ablated=infer_sentence(tiny, sentence, ablate=[tiny.tracker, (0, other)]))
    for b in doc["ablation"]["resolutions"]:
        b["owner_mass"] = {k: v / 10 for k, v in b["owner_mass"].items()}  # the share fell
    story = tell_inference(doc)[-1]
    assert f"me and L0H{other}" in story, story
    assert not re.search(r"(Without|Silence) me(?! and)", story), story


def test_a_fall_of_four_and_a_half_points_is_not_told_as_barely_moving(tiny):
    told = []
    for first in ("pilot", "professor", "nurse", "farmer", "queen", "king"):
        sentence = f"The {first} met the clerk and she saw his"
        doc = inference_json(tiny, infer_sentence(tiny, sentence),
                             ablated=infer_sentence(tiny, sentence, ablate=[tiny.tracker]))
        for a, b in zip(doc["resolutions"], doc["ablation"]["resolutions"], strict=False):
            b["owner_mass"] = {k: max(0.0, v - 0.045) for k, v in a["owner_mass"].items()}
            b["expects_owner"] = a["expects_owner"]
        told.append(tell_inference(doc)[-1])
    assert any("five points" in story for story in told), told  # the words that replaced it
    assert not any("barely" in story for story in told), told


def test_a_continuation_of_only_a_full_stop_is_told_as_closing_the_sentence(tiny):
    sentence = "The pilot met the king and she saw his"
    doc = inference_json(tiny, infer_sentence(tiny, sentence))
    doc["continuation"] = {"tokens": ["."], "stopped": "context"}  # as "[bold]x[/bold]" went
    story = " ".join(tell_inference(doc))
    assert "\u2026." not in story and '"."' in story, story  # not an ellipsis: a full stop


def test_the_star_legend_explains_stars_that_are_drawn(tiny_run_master, tiny_run):
    proven = invoke([SHE_PROFESSOR, "--run", str(tiny_run_master)]).output
    line = next(line for line in proven.splitlines() if line.startswith("pronoun head"))
    assert "★ proven by ablation" in line and line.count("★") == 2, line  # L0H1 ★ (★ ...)
    # a run whose specialists are unknown: its probe's best head, and no star anywhere
    chronicle = tiny_run / "chronicle.jsonl"
    events = [json.loads(x) for x in chronicle.read_text().splitlines()]
    for event in events:
        if event["type"] == "run_end":
            event["specialists"] = []
    chronicle.write_text("".join(json.dumps(e) + "\n" for e in events))
    unproven = invoke([SHE_PROFESSOR, "--run", str(tiny_run), "--all"]).output
    assert "not proven by ablation" in unproven and "★" not in unproven, unproven


@pytest.mark.parametrize("sentence", ["Hello world", "The king met the professor and she",
                                      "The pilot saw the queen", "The nurse met the farmer"])
def test_a_sentence_without_a_full_stop_does_not_run_into_the_prose(tiny, sentence):
    story = " ".join(tell_inference(inference_json(tiny, infer_sentence(tiny, sentence))))
    quote = f"\u201c{sentence}\u201d"
    assert quote in story
    after = story.split(quote, 1)[1]
    assert after[:1] == ".", story  # “Hello world”. The Tokenizer ..., not “Hello world” I am
    # a continuation the context cut short trails off instead of stopping mid-air
    for cut in re.findall(r"\u201c\u2026[^\u201d]*\u201d", story):
        assert cut[-2] in ".!?\u2026", story


def test_a_continuation_cut_by_the_context_trails_off(tiny):
    doc = inference_json(tiny, infer_sentence(tiny, "The king met the professor and she met the"))
    assert doc["continuation"]["stopped"] == "context"
    story = " ".join(tell_inference(doc))
    words = " ".join(doc["continuation"]["tokens"])
    assert f"\u2026{words}\u2026\u201d" in story, story


def test_the_header_writes_the_step_as_the_narrators_do(tiny):
    import io

    from rich.console import Console

    from fabric_cli.commands.infer import draw_inference

    doc = inference_json(tiny, infer_sentence(tiny, SHE_PROFESSOR))
    doc["run"]["step"] = 1400  # as a longer run's checkpoint would be
    doc["narration"] = tell_inference(doc)
    console = Console(file=io.StringIO(), width=80, color_system=None)
    draw_inference(console, doc)
    header = console.file.getvalue().strip().splitlines()[0]
    assert header.endswith("· step 1,400"), header


@pytest.mark.parametrize("width", [40, 50, 60, 80])
def test_the_tokens_line_wraps_between_tokens(tiny, width):
    import io

    from rich.console import Console

    from fabric_cli.commands.infer import draw_inference

    doc = inference_json(tiny, infer_sentence(tiny, "The king met the professor and she"))
    doc["narration"] = tell_inference(doc)
    console = Console(file=io.StringIO(), width=width, color_system=None)
    draw_inference(console, doc)
    lines = console.file.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Tokens"))
    block = lines[start:lines.index("", start)]
    assert len(block) > 1 or width == 80
    for i, line in enumerate(block):
        assert len(line) <= width and not line.strip().startswith("│"), block
        assert line.rstrip().endswith("│") == (i + 1 < len(block)), block  # "the │" together
    cells = " ".join(line.replace("Tokens", "") for line in block).split("│")
    assert [c.strip() for c in cells] == doc["tokens"], block


@pytest.mark.parametrize("width", [40, 60, 80])
def test_a_guessed_word_keeps_its_share_on_its_line(tiny, width):
    import io

    from rich.console import Console

    from fabric_cli.commands.infer import draw_inference

    doc = inference_json(tiny, infer_sentence(tiny, "The queen saw the pilot with his"))
    doc["narration"] = tell_inference(doc)
    console = Console(file=io.StringIO(), width=width, color_system=None)
    draw_inference(console, doc)
    out = console.file.getvalue()
    block = out.split("What the Fabric expects next\n")[1].split("\n\n")[0].splitlines()
    guesses = [line for line in block if "%" in line]
    assert guesses, out
    for line in guesses:  # "boots" above, "1.4%" below is the defect
        assert re.search(r"%( ·)?$", line.rstrip()), block
        assert len(line.rstrip()) <= width and not line.startswith(tuple("0123456789")), block


def test_cli_picture_names_tokens_verdict_heatmap_predictions_and_voice(tiny_run_master):
    result = invoke([SHE_PROFESSOR, "--run", str(tiny_run_master)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Tokens" in out and "professor" in out
    assert "✓ agrees" in out
    assert "◆" in out  # the expected cell in the heatmap
    assert "What the Fabric expects next" in out and "greedy continuation" in out
    assert "speaks" in out and "\x1b[" not in out


def test_cli_json_schema(tiny_run_master, tiny):
    result = invoke(["The professor finished her lecture.", "--run", str(tiny_run_master),
                     "--json", "--ablate", "0.1"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema_version"] == 1
    T = len(doc["tokens"])
    assert doc["tokens"][0] == "<bos>" and len(doc["token_ids"]) == T
    assert set(doc["attention"]) == {f"{l}.{h}" for l in range(tiny.cfg.n_layers)
                                     for h in range(tiny.cfg.n_heads)}
    for pattern in doc["attention"].values():
        rows = np.asarray(pattern)
        assert rows.shape == (T, T)
        assert np.allclose(rows.sum(axis=1), 1, atol=1e-4)
        assert np.allclose(np.triu(rows, 1), 0)  # causal: nothing from the future
    (r,) = doc["resolutions"]
    assert r["pronoun"] == "her" and r["antecedent"]["token"] == "professor"
    assert doc["continuation"]["stopped"] == "ended"
    assert doc["ablation"]["heads"] == [[0, 1]] and doc["narration"]


def test_unknown_words_are_flagged_and_still_run(tiny_run_master):
    result = invoke(["The zorblax met the king", "--run", str(tiny_run_master), "--json"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["unknown_words"] == ["zorblax"] and doc["token_ids"][2] == 2
    assert "zorblax" in result.stderr and "<unk>" in result.stderr


@pytest.mark.parametrize("sentence", [
    "[bold]the king[/bold] met the [red]queen",
    "\x1b[31mthe king\x1b[0m met the queen",
    "the king\x00 met the queen",
    "😀 the king met 👑",
    "...",
    "?!",
])
def test_hostile_sentences_are_shown_literally_or_refused_in_one_line(tiny_run_master, sentence):
    result = invoke([sentence, "--run", str(tiny_run_master)])
    if result.exit_code != 0:
        one_line_error(result)
        return
    assert "\x1b" not in result.output and "\x00" not in result.output
    if "[bold]" in sentence:
        assert "[bold]" in result.output  # markup stays visible, never styles


@pytest.mark.parametrize("sentence, words", [("", "empty"), ("   \t ", "empty"),
                                             ("the king " * 5000, "shorten")])
def test_empty_and_overlong_sentences_are_one_line_errors(tiny_run_master, sentence, words):
    line = one_line_error(invoke([sentence, "--run", str(tiny_run_master)]))
    assert words in line


@pytest.mark.parametrize("spec", ["x", "0", "0.9", "7.0", "-1.0"])
def test_bad_ablate_is_one_line(tiny_run_master, spec):
    line = one_line_error(invoke([SHE_PROFESSOR, "--run", str(tiny_run_master), "--ablate", spec]))
    assert "0.2" in line or "there is no head" in line


def test_several_heads_in_one_ablate_are_told_to_repeat_it(tiny_run_master):
    line = one_line_error(invoke([SHE_PROFESSOR, "--run", str(tiny_run_master), "--ablate",
                                  "0.0,0.1"]))
    assert line.endswith("to silence several, repeat it: --ablate 0.0 --ablate 0.1"), line


def test_missing_run_missing_checkpoint_and_corrupt_checkpoint(tiny_run, tmp_path):
    line = one_line_error(invoke([SHE_PROFESSOR, "--run", str(tmp_path / "nowhere")]))
    assert "nowhere" in line
    (tiny_run / "model.safetensors").write_bytes(b"\x00garbage")
    line = one_line_error(invoke([SHE_PROFESSOR, "--run", str(tiny_run)]))
    assert "model.safetensors" in line
    (tiny_run / "checkpoint" / "model.safetensors").unlink()
    line = one_line_error(invoke([SHE_PROFESSOR, "--run", str(tiny_run)]))
    assert "model.safetensors" in line and "missing" in line


def test_no_runs_here_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(invoke([SHE_PROFESSOR]))
    assert "no runs" in line and "fabric train" in line


def test_latest_run_is_used_by_default(tiny_run, monkeypatch):
    monkeypatch.chdir(tiny_run.parent.parent)  # .../runs/tiny
    result = invoke([SHE_PROFESSOR, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run"]["dir"].endswith("tiny")


def test_export_writes_svg_and_refuses_other_suffixes(tiny_run_master, tmp_path):
    target = tmp_path / "infer.svg"
    result = invoke([SHE_PROFESSOR, "--run", str(tiny_run_master), "--export", str(target)])
    assert result.exit_code == 0 and target.read_text().lstrip().startswith("<svg")
    line = one_line_error(invoke([SHE_PROFESSOR, "--run", str(tiny_run_master),
                                  "--export", str(tmp_path / "x.png")]))
    assert "x.png" in line and ".svg" in line


def test_layer_and_head_go_together(tiny_run_master):
    line = one_line_error(invoke([SHE_PROFESSOR, "--run", str(tiny_run_master), "--layer", "0"]))
    assert "--head" in line


def test_load_run_without_vocabulary_names_the_file(tiny_run):
    state_file = tiny_run / "checkpoint" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["extra"].pop("vocab")
    state_file.write_text(json.dumps(state))
    (tiny_run / "chronicle.jsonl").unlink()
    with pytest.raises(FabricError, match="trainer_state.json"):
        load_run(tiny_run)


def test_a_plural_owner_takes_a_plain_apostrophe(tiny):
    doc = inference_json(tiny, infer_sentence(tiny, "The king met the professor and she"))
    for r in doc["resolutions"]:
        r["expects_owner"] = "scientists"
        r["owner_mass"] = {"scientists": 0.9}
    text = " ".join(tell_inference(doc))
    assert "scientists's" not in text
    assert "the scientists' own words" in text or "belong to the scientists" in text


def test_the_table_writes_a_pronoun_owners_share_as_the_story_does(tiny):
    import io

    from rich.console import Console

    from fabric_cli.commands.infer import draw_inference

    doc = inference_json(tiny, infer_sentence(tiny, "The queen saw the pilot with his"))
    row = next(r for r in doc["resolutions"] if r["expects_owner"])
    row["owner_mass"][row["expects_owner"]] = 0.995  # the story says "99.5%"
    doc["narration"] = tell_inference(doc)
    console = Console(file=io.StringIO(), width=100, color_system=None)
    draw_inference(console, doc)
    table = console.file.getvalue().split("Who each pronoun points to")[1].split("\n\n")[0]
    assert f"{row['expects_owner']} 99.5%" in table  # not "100%": most is not all


def test_a_runner_up_that_is_the_pronoun_itself_is_called_so(tiny):
    """'0.195 on the runner-up "their"' named the pronoun as if it were another word; when
    the second strongest key is the pronoun's own position, the story says "itself"."""
    import copy

    doc = inference_json(tiny, infer_sentence(tiny, SHE_PROFESSOR))
    r = doc["resolutions"][0]
    assert r["verdict"] == "correct"
    selfish = copy.deepcopy(doc)
    runner = selfish["resolutions"][0]["runner_up"]
    runner.update(position=r["position"], token=r["pronoun"])
    texts = set()
    for variant in range(40):  # any variant the voice may pick says it the same way
        selfish["sentence"] = SHE_PROFESSOR + " " * variant
        texts.add(" ".join(tell_inference(selfish)))
    said = " ".join(texts)
    assert f'"{r["pronoun"]}" itself' in said, said
    assert not re.search(rf'(runner-up,? |next came |; )"{r["pronoun"]}"(?! itself)', said), said
