"""Inference: one sentence through a trained Fabric, measured.

    load_run(run_dir)            the checkpoint, its Tokenizer, its grammar, its pronoun head
    infer_sentence(run, text)    tokens, every head's attention, what the tracker resolves each
                                 pronoun to (against the grammar's agreement), what the Fabric
                                 expects next, a greedy continuation
    compare_ablation(a, b)       what silencing heads changed
    heldout_resolution_rate(...) the tracker on sentences whose noun pair never met in training

A pronoun is resolved twice: by attention (the token the tracker head weighs most from the
pronoun) and by behaviour (of the nouns in the sentence, whose own words — the verbs and
attributes the grammar gives it — the Fabric expects next). Silencing a head leaves its own
pattern intact, so the behavioural resolution is the one ablation can move.

The run is read fast: the checkpoint, and only the first and last lines of the chronicle
(run_start, run_end); the Corpus is never rebuilt. Shapes: T tokens, NH heads, V vocab.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fabric_cli.analysis.runs import TRAINER_STATE, checkpoint_dir, load_checkpoint
from fabric_cli.errors import FabricError
from fabric_cli.language.annotate import antecedents
from fabric_cli.language.grammar import Grammar
from fabric_cli.language.tokenizer import BOS, PAD, SPECIALS, UNK, Tokenizer
from fabric_cli.nn.config import ModelConfig
from fabric_cli.nn.model import Capture, Params, forward

CHRONICLE = "chronicle.jsonl"
TOP_K = 5
END = "."


EXPECTS_AT_LEAST = 0.1  # next-word probability on a noun's own words to say it is expected


@dataclass
class LoadedRun:
    run_dir: Path
    cfg: ModelConfig
    params: Params
    step: int
    tokenizer: Tokenizer
    grammar: Grammar | None  # None when the scenario cannot be found: no verdicts then
    scenario: str
    scenario_source: str | None  # the name or path the grammar was loaded from
    trackers: list[tuple[int, int]]  # the pronoun heads: proven specialists (best score
    # first), else the best-scoring head of the last probe
    tracker_source: str  # "specialist" (ablation-proven), "probe" (best score), "none"
    specialists: list[dict] = field(default_factory=list)  # run_end's, as stored
    warnings: list[str] = field(default_factory=list)  # things the user should know

    @property
    def tracker(self) -> tuple[int, int] | None:
        return self.trackers[0] if self.trackers else None

    def specialist_info(self, head: tuple[int, int]) -> dict | None:
        """run_end's record of `head` as a pronoun specialist (score, ablation), if it is one."""
        for sp in self.specialists:
            if (sp.get("layer"), sp.get("head")) == tuple(head) and sp.get("role") == "pronoun":
                return sp
        return None


# -- loading -----------------------------------------------------------------------------


def _chronicle_ends(path: Path) -> tuple[dict | None, dict | None, dict | None]:
    """(run_start, run_end, last probe) without parsing the lines in between."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return None, None, None

    def parse(line: bytes) -> dict | None:
        try:
            event = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return None  # a torn line: the chronicle reader would skip it too
        return event if isinstance(event, dict) else None

    start = parse(lines[0]) if lines else None
    if start is not None and start.get("type") != "run_start":
        start = None
    end = probe = None
    for line in reversed(lines):
        head = line[:80].replace(b" ", b"")  # every event starts {"v":1,"type":...
        if end is None and b'"type":"run_end"' in head:
            end = parse(line)
        elif probe is None and b'"type":"probe"' in head:
            probe = parse(line)
            break  # run_end, if any, comes after the last probe
    return start, end, probe


def _vocab(extra: dict, start: dict | None, run_dir: Path, d_vocab: int) -> Tokenizer:
    vocab = extra.get("vocab")
    source = checkpoint_dir(run_dir) / TRAINER_STATE
    if not isinstance(vocab, list) and start is not None:
        vocab, source = start.get("vocab"), run_dir / CHRONICLE
    if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
        raise FabricError(f"{source}: no vocabulary recorded; re-run `fabric train`")
    tokenizer = Tokenizer(vocab[len(SPECIALS):])
    if tokenizer.vocab != vocab or len(vocab) != d_vocab:
        raise FabricError(f"{source}: the vocabulary does not match the model "
                          f"({len(vocab)} tokens for d_vocab {d_vocab}); re-run `fabric train`")
    return tokenizer


def _grammar(start: dict | None, scenario: str,
             warnings: list[str]) -> tuple[Grammar | None, str | None]:
    from fabric_cli.scenario import load_scenario

    tried = []
    path = start.get("scenario_path") if start else None
    for name in (path, scenario):
        if not isinstance(name, str) or not name or name in tried:
            continue
        tried.append(name)
        if name == path and not Path(name).is_file():
            continue
        try:
            return load_scenario(name).grammar, name
        except FabricError:
            continue
    warnings.append(f"the scenario {scenario!r} of this run cannot be loaded, so pronouns are "
                    "shown without the grammar's verdict")
    return None, None


def load_run(run_dir: str | Path) -> LoadedRun:
    """Everything inference needs; every problem is a FabricError naming the file."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise FabricError(f"{run_dir}: no such run directory; train one with `fabric train`")
    if not run_dir.is_dir():
        raise FabricError(f"{run_dir}: not a directory; give the run directory (--run DIR)")
    ckpt = load_checkpoint(run_dir)
    warnings: list[str] = []
    chronicle = run_dir / CHRONICLE
    start, end, probe = _chronicle_ends(chronicle)
    if start is None:
        warnings.append(f"{chronicle}: missing or unreadable; the pronoun specialist is unknown")
    tokenizer = _vocab(ckpt.extra, start, run_dir, ckpt.cfg.d_vocab)
    scenario = str((start or {}).get("scenario") or ckpt.extra.get("scenario") or "")
    grammar, source = _grammar(start, scenario, warnings)
    specialists = [s for s in (end or {}).get("specialists") or [] if isinstance(s, dict)]
    trackers, picked_by = _pick_trackers(specialists, probe, ckpt.cfg)
    return LoadedRun(run_dir, ckpt.cfg, ckpt.params, ckpt.step, tokenizer, grammar, scenario,
                     source, trackers, picked_by, specialists, warnings)


def _score(value: object) -> float:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return -math.inf
    return x if math.isfinite(x) else -math.inf


def _pick_trackers(specialists: list[dict], probe: dict | None,
                   cfg: ModelConfig) -> tuple[list[tuple[int, int]], str]:
    def valid(layer: object, head: object) -> bool:
        return (isinstance(layer, int) and isinstance(head, int)
                and 0 <= layer < cfg.n_layers and 0 <= head < cfg.n_heads)

    proven = [s for s in specialists if s.get("role") == "pronoun"
              and valid(s.get("layer"), s.get("head"))]
    if proven:
        proven.sort(key=lambda s: -_score(s.get("score")))
        return list(dict.fromkeys((s["layer"], s["head"]) for s in proven)), "specialist"
    rows = [r for r in (probe or {}).get("heads") or []
            if isinstance(r, dict) and valid(r.get("layer"), r.get("head"))
            and isinstance(r.get("scores"), dict)]
    if rows:
        best = max(rows, key=lambda r: _score(r["scores"].get("pronoun")))
        return [(best["layer"], best["head"])], "probe"
    return [], "none"


# -- one sentence ------------------------------------------------------------------------


@dataclass
class Resolution:
    """One pronoun: where the tracker looks, and what the grammar says it should find."""

    position: int  # token index (0 = <bos>)
    pronoun: str
    agreement: str | None
    head: tuple[int, int]  # the tracker that resolved it: the surest (highest peak) of them
    heard: bool  # False when that head is silenced (its pattern exists, its output is zeroed)
    attended: int  # token index of the tracker's strongest key
    weight: float
    runner_up: int  # the second strongest key
    runner_up_weight: float
    nearest_noun: int | None  # closest candidate noun before the pronoun (the naive guess)
    agreeing: list[int]  # latest mention of each candidate noun before it that agrees
    verdict: str  # "correct", "wrong", "no_agreeing_noun", "ambiguous", "no_grammar"
    owner_mass: dict[str, float]  # noun -> next-token probability on that noun's own words
    expects_owner: str | None  # the noun whose own words get the most probability

    @property
    def antecedent(self) -> int | None:
        return self.agreeing[0] if len(self.agreeing) == 1 else None


@dataclass
class Prediction:
    position: int  # the token after which the Fabric predicts
    top: list[tuple[str, float]]


@dataclass
class Inference:
    text: str
    tokens: list[str]  # "<bos>" first; unknown words as typed (case-folded)
    ids: list[int]
    unknown: list[str]
    attention: list[np.ndarray]  # per layer (NH, T, T)
    heads: list[tuple[int, int]]  # the trackers that may resolve a pronoun (not silenced ones)
    resolutions: list[Resolution]
    predictions: list[Prediction]  # after each pronoun, then after the last token
    continuation: list[str]
    stopped: str  # why the continuation ended: "period", "context", "ended", "special"
    sentence_loss: float  # mean nats per typed token (how surprising the sentence was)
    ablated: list[tuple[int, int]] = field(default_factory=list)
    logits: np.ndarray | None = None  # (T, V) float32, as the model computed them

    def pattern(self, layer: int, head: int) -> np.ndarray:
        return self.attention[layer][head]


def encode_sentence(run: LoadedRun, text: str) -> tuple[list[int], list[str], list[str]]:
    """(ids, tokens, unknown words); a one-line FabricError when it cannot be run."""
    if not text.strip():
        raise FabricError("the sentence is empty; give one, e.g. "
                          "fabric infer \"The professor thanked the king after she finished her lecture.\"")
    encoded = run.tokenizer.encode(text)
    words = len(encoded.ids) - 1
    if words == 0:
        raise FabricError("the sentence has no words the Tokenizer can read; type some words")
    limit = run.cfg.n_ctx - 1
    if words > limit:
        raise FabricError(f"the sentence has {words} tokens but this Fabric reads at most "
                          f"{limit} (n_ctx {run.cfg.n_ctx} with <bos>); shorten it")
    return encoded.ids, encoded.tokens, encoded.unknown


def check_heads(run: LoadedRun, heads: list[tuple[int, int]]) -> None:
    for layer, head in heads:
        if not (0 <= layer < run.cfg.n_layers and 0 <= head < run.cfg.n_heads):
            raise FabricError(
                f"there is no head {layer}.{head}: this Fabric has layers 0..{run.cfg.n_layers - 1}"
                f" and heads 0..{run.cfg.n_heads - 1}")


def infer_sentence(run: LoadedRun, text: str, *, heads: list[tuple[int, int]] | None = None,
                   ablate: list[tuple[int, int]] | None = None, top_k: int = TOP_K) -> Inference:
    """`heads`: the trackers that resolve pronouns (default: the run's pronoun specialists);
    `ablate`: heads whose output is zeroed (they resolve nothing: the Fabric cannot hear them).
    """
    ids, tokens, unknown = encode_sentence(run, text)
    return infer_ids(run, text, ids, tokens, unknown, heads=heads, ablate=ablate, top_k=top_k)


def infer_ids(run: LoadedRun, text: str, ids: list[int], tokens: list[str], unknown: list[str],
              *, heads: list[tuple[int, int]] | None = None,
              ablate: list[tuple[int, int]] | None = None, top_k: int = TOP_K) -> Inference:
    ablate = list(dict.fromkeys(ablate or []))
    heads = list(heads) if heads is not None else list(run.trackers)
    check_heads(run, ablate + heads)
    # Silenced heads resolve nothing the Fabric can use, unless every tracker is silenced:
    # then their patterns still show where they look (`heard` False on the resolution).
    heads = [h for h in heads if h not in ablate] or heads
    x = np.asarray([ids], dtype=np.int64)
    targets = np.asarray([ids[1:] + [-1]], dtype=np.int64)
    result = forward(run.params, run.cfg, x, targets, capture=Capture(attention=True),
                     ablate=ablate)
    attention = [layer[0].astype(np.float64) for layer in result.attention]  # (NH, T, T)
    probs = _softmax(result.logits[0].astype(np.float64))  # (T, V)
    typed = len(ids) - 1
    loss = float(result.token_losses[0, :typed].mean()) if typed > 1 else float(
        result.token_losses[0, 0])
    resolutions = _resolve(run, tokens, probs, attention, heads, ablate)
    positions = [r.position for r in resolutions]
    if run.tokenizer.vocab[ids[-1]] != END:  # after ".", nothing was ever learned
        positions.append(len(ids) - 1)
    predictions = [Prediction(q, _top(run, probs[q], top_k))
                   for q in dict.fromkeys(positions)]
    continuation, stopped = greedy_continuation(run, ids, ablate)
    return Inference(text, tokens, ids, unknown, attention, heads, resolutions, predictions,
                     continuation, stopped, loss, ablate, result.logits[0])


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _top(run: LoadedRun, probs: np.ndarray, k: int) -> list[tuple[str, float]]:
    order = np.argsort(-probs, kind="stable")[:k]
    return [(run.tokenizer.vocab[i], float(probs[i])) for i in order]


def greedy_continuation(run: LoadedRun, ids: list[int],
                        ablate: list[tuple[int, int]] | None = None) -> tuple[list[str], str]:
    """The Fabric's own most likely next tokens, until "." or the context is full."""
    vocab = run.tokenizer.vocab
    if vocab[ids[-1]] == END:
        return [], "ended"  # every sentence it read stopped at "."; nothing was learned after
    seq = list(ids)
    out: list[str] = []
    while len(seq) < run.cfg.n_ctx:
        logits = forward(run.params, run.cfg, np.asarray([seq]), ablate=ablate or ()).logits
        nxt = int(logits[0, -1].argmax())
        if nxt in (PAD, BOS, UNK):
            return out, "special"
        seq.append(nxt)
        out.append(vocab[nxt])
        if vocab[nxt] == END:
            return out, "period"
    return out, "context"


def _resolve(run: LoadedRun, tokens: list[str], probs: np.ndarray, attention: list[np.ndarray],
             heads: list[tuple[int, int]], ablate: list[tuple[int, int]]) -> list[Resolution]:
    grammar = run.grammar
    if grammar is None or not heads:
        return []
    forms = {f: agreement for agreement, pair in grammar.pronouns.items() for f in pair}
    nouns = {n.word: n for n in grammar.nouns}
    vocab_ids = run.tokenizer.ids
    told = antecedents(grammar, tokens[1:])  # the grammar's own reading (language/annotate)
    resolutions = []
    for q, word in enumerate(tokens):
        if q == 0 or word not in forms:
            continue
        # Several heads may share the role (each a backup of the other, as ablation found):
        # the one whose attention from this pronoun peaks highest speaks for them.
        head = max(heads, key=lambda h: float(attention[h[0]][h[1], q, : q + 1].max()))
        row = attention[head[0]][head[1], q, : q + 1]
        order = np.argsort(-row, kind="stable")
        before = [k for k in range(1, q) if tokens[k] in nouns]
        latest: dict[str, int] = {}
        for k in before:
            latest[tokens[k]] = k
        agreeing = [k for w, k in latest.items() if nouns[w].agreement == forms[word]]
        agreeing.sort()
        if len(agreeing) > 1 and told[q - 1] >= 0:  # the next word is one noun's own
            agreeing = [told[q - 1] + 1]
        attended = int(order[0])
        if not agreeing:
            verdict = "no_agreeing_noun"
        elif len(agreeing) > 1:
            verdict = "ambiguous"
        else:
            verdict = "correct" if tokens[attended] == tokens[agreeing[0]] else "wrong"
        mass = {}
        for w in latest:
            owned = [vocab_ids[o] for o in (*nouns[w].verbs, *nouns[w].attributes)
                     if o in vocab_ids]
            mass[w] = float(probs[q, owned].sum())
        # the Fabric 'expects' a noun's own words only if it gives them a real share
        owner = max(mass, key=mass.get) if mass else None
        owner = owner if owner is not None and mass[owner] >= EXPECTS_AT_LEAST else None
        resolutions.append(Resolution(
            q, word, forms[word], head, head not in ablate, attended, float(row[attended]),
            int(order[1]), float(row[order[1]]),
            before[-1] if before else None, agreeing, verdict, mass, owner))
    return resolutions


# -- what silencing heads changed --------------------------------------------------------


def compare_ablation(doc: dict) -> dict:
    """What silencing changed, from an inference_json document that has an "ablation".

    Per pronoun: who resolved it and where it looked, whose own words the Fabric expects and
    how much probability the antecedent's own words keep (the noun the Fabric expected before
    silencing, when the grammar names no antecedent); per prediction, the top token."""
    after = doc["ablation"]
    pronouns = []
    for a, b in zip(doc["resolutions"], after["resolutions"], strict=True):
        ante = (a["antecedent"] or {}).get("token") or a["expects_owner"]
        pronouns.append({
            "position": a["position"],
            "pronoun": a["pronoun"],
            "noun": ante,
            "head_before": a["head"], "head_after": b["head"], "heard_after": b["heard"],
            "attended_before": a["attended"]["token"], "attended_after": b["attended"]["token"],
            "owner_before": a["expects_owner"], "owner_after": b["expects_owner"],
            "mass_before": a["owner_mass"].get(ante) if ante else None,
            "mass_after": b["owner_mass"].get(ante) if ante else None,
        })
    predictions = [{"position": a["position"], "after": a["after"],
                    "top_before": a["top"][0], "top_after": b["top"][0],
                    "prob_of_top_before_after": next(
                        (t["prob"] for t in b["top"] if t["token"] == a["top"][0]["token"]),
                        None)}
                   for a, b in zip(doc["predictions"], after["predictions"], strict=True)]
    return {
        "heads": after["heads"],
        "pronouns": pronouns,
        "predictions": predictions,
        "sentence_loss_before": doc["sentence_loss"],
        "sentence_loss_after": after["sentence_loss"],
        "continuation_before": doc["continuation"]["tokens"],
        "continuation_after": after["continuation"]["tokens"],
    }


# -- held-out check ----------------------------------------------------------------------


def heldout_resolution_rate(run: LoadedRun, n: int = 200, seed: int = 12345) -> dict:
    """The tracker's resolutions on n held-out sentences (noun pairs never seen together in
    training), drawn from the run's own scenario and typed back as text, judged against the
    generator's own antecedents. Returns rates for attention and behaviour."""
    from fabric_cli.language.corpus import Corpus
    from fabric_cli.language.tokenizer import join_words
    from fabric_cli.scenario import load_scenario

    if run.scenario_source is None or run.tracker is None:
        raise FabricError("this run has no scenario grammar or no pronoun head to check")
    scenario = load_scenario(run.scenario_source)
    corpus = Corpus(scenario)
    sentences = corpus.sample(np.random.default_rng(seed), n, "heldout")
    attention_hits = behaviour_hits = total = 0
    for sentence in sentences:
        text = join_words(sentence.words)
        result = infer_sentence(run, text)
        by_position = {r.position: r for r in result.resolutions}
        for i, ante in enumerate(sentence.antecedent):
            if ante < 0:
                continue
            total += 1
            r = by_position.get(i + 1)
            if r is None:
                continue
            antecedent = sentence.words[ante]
            attention_hits += result.tokens[r.attended] == antecedent
            behaviour_hits += r.expects_owner == antecedent
    return {"sentences": len(sentences), "pronouns": total,
            "attention": attention_hits / total if total else math.nan,
            "behaviour": behaviour_hits / total if total else math.nan}


# -- the --json document (docs/infer-json.md) ---------------------------------------------

SCHEMA_VERSION = 1


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def resolution_json(inf: Inference, r: Resolution) -> dict:
    tok = inf.tokens
    ante = r.antecedent
    return {
        "position": r.position,
        "pronoun": r.pronoun,
        "agreement": r.agreement,
        "head": list(r.head),
        "heard": r.heard,
        "attended": {"position": r.attended, "token": tok[r.attended], "weight": _r(r.weight)},
        "runner_up": {"position": r.runner_up, "token": tok[r.runner_up],
                      "weight": _r(r.runner_up_weight)},
        "nearest_noun": None if r.nearest_noun is None else
        {"position": r.nearest_noun, "token": tok[r.nearest_noun]},
        "agreeing_nouns": [{"position": k, "token": tok[k]} for k in r.agreeing],
        "antecedent": None if ante is None else {"position": ante, "token": tok[ante]},
        "verdict": r.verdict,
        "owner_mass": {noun: _r(m) for noun, m in r.owner_mass.items()},
        "expects_owner": r.expects_owner,
    }


def predictions_json(inf: Inference) -> list[dict]:
    return [{"position": p.position, "after": inf.tokens[p.position],
             "top": [{"token": t, "prob": _r(pr)} for t, pr in p.top]}
            for p in inf.predictions]


def inference_json(run: LoadedRun, inf: Inference, *, ablated: Inference | None = None,
                   narration: list[str] | None = None, logits: bool = False) -> dict:
    """Everything measured, as plain JSON (schema in docs/infer-json.md). With `logits`, the
    full logits too: one row per position, one exact float32 value per vocabulary token."""
    def outcome(x: Inference) -> dict:
        return {
            "heads_resolving": [list(h) for h in x.heads],
            "resolutions": [resolution_json(x, r) for r in x.resolutions],
            "predictions": predictions_json(x),
            "continuation": {"tokens": x.continuation, "stopped": x.stopped},
            "sentence_loss": _r(x.sentence_loss),
        }

    doc = {
        "schema_version": SCHEMA_VERSION,
        "run": {"dir": str(run.run_dir), "scenario": run.scenario, "step": run.step,
                "n_layers": run.cfg.n_layers, "n_heads": run.cfg.n_heads, "n_ctx": run.cfg.n_ctx},
        "sentence": inf.text,
        "tokens": inf.tokens,
        "token_ids": inf.ids,
        "unknown_words": inf.unknown,
        "trackers": {"heads": [list(h) for h in run.trackers], "source": run.tracker_source},
        "attention": {f"{layer}.{head}": np.round(inf.attention[layer][head], 6).tolist()
                      for layer in range(run.cfg.n_layers) for head in range(run.cfg.n_heads)},
        **outcome(inf),
        "ablation": None,
        "narration": narration or [],
    }
    if logits and inf.logits is not None:
        doc["logits"] = {"vocab": list(run.tokenizer.vocab),
                         "rows": [[float(v) for v in row] for row in inf.logits]}
    if ablated is not None:
        doc["ablation"] = {"heads": [list(h) for h in ablated.ablated], **outcome(ablated),
                           "attention": {
                               f"{layer}.{head}": np.round(ablated.attention[layer][head], 6)
                               .tolist()
                               for layer in range(run.cfg.n_layers)
                               for head in range(run.cfg.n_heads)}}
    return doc
