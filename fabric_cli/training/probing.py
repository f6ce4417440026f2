"""The Prober: every K steps, fixed annotated sentences go through the Fabric without dropout
and every head is scored. Nothing here touches the training state or its random streams.
"""

from __future__ import annotations

import numpy as np

from fabric_cli.analysis.ablation import (
    measure_silencings,
    name_specialists,
    owned_words,
    pronoun_targets,
    role_measure,
)
from fabric_cli.analysis.measures import MEASURE_SENTENCES, probe_measures
from fabric_cli.analysis.probes import (
    ROLES,
    best_head,
    build_probe_batch,
    head_table,
    misled_noun_sites,
    nearest_noun_baseline,
    site_baselines,
    uniform_shares,
)
from fabric_cli.analysis.stream import stream_scale
from fabric_cli.language.annotate import annotate_words
from fabric_cli.nn.model import Capture, ForwardResult, forward, forward_by_rows

SNAPSHOT_DECIMALS = 3
# The same mask for every run, so twins with and without Dropout are tested alike: 0.3 on
# block outputs and attention (heavy-dropout's), averaged over a few draws.
MASK_TEST_RATE = 0.3
MASK_TEST_DRAWS = 4


class JointBatch:
    """Several probe batches as one: rows stacked, each padded on the right to the longest.
    Right padding never changes what a causal model computes for the real tokens, so each
    batch's slice of the joint pass is what it would have got alone (to rounding): one
    batch instead of three, measured in even slices (`forward_by_rows`), fewer and larger
    NumPy calls."""

    def __init__(self, batches) -> None:
        self.T = max(pb.tokens.shape[1] for pb in batches)
        self.shapes = [pb.tokens.shape for pb in batches]
        self.tokens = np.concatenate([np.pad(pb.tokens, ((0, 0), (0, self.T - pb.tokens.shape[1])))
                                      for pb in batches])
        self.targets = np.concatenate([
            np.pad(pb.targets, ((0, 0), (0, self.T - pb.targets.shape[1])), constant_values=-1)
            for pb in batches])

    def split(self, joint: ForwardResult) -> list[ForwardResult]:
        parts, start = [], 0
        for B, T in self.shapes:
            rows = slice(start, start + B)
            start += B
            losses = joint.token_losses[rows, :T]
            n_valid = int(np.count_nonzero(self.targets[rows, :T] >= 0))
            parts.append(ForwardResult(
                loss=float(losses.sum(dtype=np.float64)) / max(n_valid, 1),
                logits=joint.logits[rows, :T], token_losses=losses,
                attention=[a[rows, :, :T, :T] for a in joint.attention],
                stream=None if joint.stream is None else [x[rows, :T] for x in joint.stream]))
        return parts


class Prober:
    def __init__(self, corpus, cfg, dropout: float, seed: int, attn_dropout: float = 0.0) -> None:
        self.corpus = corpus
        self.cfg = cfg
        self.dropout = float(dropout)
        self.attn_dropout = float(attn_dropout)
        self.seed = seed
        self.train_sentences = corpus.probe_set("train")
        self.heldout_sentences = corpus.probe_set("heldout")
        self.train_pb = build_probe_batch(self.train_sentences, corpus.batch)
        self.heldout_pb = build_probe_batch(self.heldout_sentences, corpus.batch)
        self.measure_pb = build_probe_batch(self.train_sentences[:MEASURE_SENTENCES], corpus.batch)
        self.shares = uniform_shares(self.train_pb)
        self.baseline = {"train": nearest_noun_baseline(self.train_pb),
                         "heldout": nearest_noun_baseline(self.heldout_pb)}
        # verb: the previous token; noun: the nearest noun (held-out sites)
        self.role_baselines = site_baselines(self.heldout_pb, self.heldout_sentences)
        # Ablation, done once at the end, reads three times as many held-out sentences as a
        # probe (verb and noun sites are a few per hundred sentences), and the noun role where
        # it matters: the sites whose nearest noun calls for another word than the subject.
        self.ablation_sentences = corpus.sample(
            np.random.default_rng([corpus.scenario.seed, 11]), 3 * len(self.heldout_sentences),
            "heldout")
        self.ablation_pb = misled_noun_sites(
            build_probe_batch(self.ablation_sentences, corpus.batch), self.ablation_sentences,
            corpus.grammar)
        tok = corpus.tokenizer
        self.story = [annotate_words(corpus, tok.split(text))
                      for text in corpus.scenario.probes.story_sentences]
        self.story_pb = build_probe_batch(self.story, corpus.batch) if self.story else None
        drawn = corpus.sample(np.random.default_rng([seed, 7]), 4000, "train")
        self.heldout_targets, self.train_targets = {}, {}
        for role in ("pronoun", "verb", "noun"):
            owned = owned_words(drawn, role)
            if not owned or not self.heldout_pb.n_sites(role):
                continue
            self.heldout_targets[role] = pronoun_targets(
                self.ablation_sentences, self.ablation_pb, owned, tok.token_id, cfg.d_vocab,
                role)
            self.train_targets[role] = pronoun_targets(
                self.train_sentences, self.train_pb, owned, tok.token_id, cfg.d_vocab, role)
        self.joint = JointBatch([self.train_pb, self.heldout_pb]
                                + ([self.story_pb] if self.story_pb is not None else []))

    def _clean_passes(self, params) -> list[ForwardResult]:
        """The train, held-out (and story) probe sentences in one forward pass, dropout off,
        split back into one result per batch as if each had gone through alone."""
        j = self.joint
        return j.split(forward_by_rows(params, self.cfg, j.tokens, j.targets,
                                       capture=Capture(attention=True, stream=True)))

    def probe(self, params, step: int, train_loss: float | None) -> dict:
        """`train_loss` is the mean training-batch loss since the last probe (with dropout);
        `val_loss` is measured here on fresh sentences of the training distribution, and
        `heldout_loss` on sentences whose noun pair never met in training."""
        train, held, *story = self._clean_passes(params)
        heads = head_table(train.attention, self.train_pb, held.attention, self.heldout_pb)
        return {
            "type": "probe", "step": step,
            "train_loss": train.loss if train_loss is None else train_loss,
            "val_loss": train.loss, "heldout_loss": held.loss,
            "floor": dict(self.corpus.floor), "heads": heads,
            "baseline_acc": dict(self.baseline), "role_shares": dict(self.shares),
            "focus_under_dropout": self._focus_under_dropout(params, step, heads, train),
            "mask_test": self._mask_test(params, step, train),
            "snapshots": self._snapshots(params, story[0] if story else None),
            "stream_scale": stream_scale(train.stream, self.train_pb.tokens),
            **probe_measures(params, self.cfg, self.measure_pb, heads, step),  # measures.py
        }

    def _focus_under_dropout(self, params, step: int, heads: list[dict], clean) -> dict | None:
        """How well pronouns are still resolved when Dropout cuts threads as in training.

        Dropout cuts block outputs and (with attn_dropout) attention weights, so what it
        knocks is the trackers' work reaching the prediction: the behavioural accuracy after
        pronouns (the antecedent's own words get the most probability among all nouns'),
        measured without (`clean`, the probe's own pass) and with a training-like mask.
        """
        if self.dropout <= 0 and self.attn_dropout <= 0:
            return None
        best = best_head(heads, "pronoun")
        pb, pt = self.train_pb, {"pronoun": self.train_targets.get("pronoun")}
        rng = np.random.default_rng([self.seed, 1000003, step])
        dropped = forward(params, self.cfg, pb.tokens, pb.targets, dropout=self.dropout,
                          attn_dropout=self.attn_dropout, rng=rng)
        return {"layer": best["layer"], "head": best["head"],
                "clean": role_measure(clean, pb, "pronoun", pt)["acc"],
                "dropped": role_measure(dropped, pb, "pronoun", pt)["acc"],
                "rate": self.dropout, "attn_rate": self.attn_dropout,
                "measure": "pronoun resolution accuracy"}

    def _mask_test(self, params, step: int, clean) -> dict | None:
        """Pronoun resolution (as in `_focus_under_dropout`) under one fixed mask, whatever
        Dropout the run trained with: what a Fabric trained without cuts does when cut."""
        pt = {"pronoun": self.train_targets.get("pronoun")}
        pb = self.train_pb
        if pt["pronoun"] is None or not pb.n_sites("pronoun"):
            return None
        accs = []
        for draw in range(MASK_TEST_DRAWS):
            rng = np.random.default_rng([self.seed, 1000033, step, draw])
            masked = forward(params, self.cfg, pb.tokens, pb.targets, dropout=MASK_TEST_RATE,
                             attn_dropout=MASK_TEST_RATE, rng=rng)
            accs.append(role_measure(masked, pb, "pronoun", pt)["acc"])
        return {"rate": MASK_TEST_RATE, "attn_rate": MASK_TEST_RATE, "draws": MASK_TEST_DRAWS,
                "clean": role_measure(clean, pb, "pronoun", pt)["acc"],
                "masked": float(np.mean(accs)), "measure": "pronoun resolution accuracy"}

    def _snapshots(self, params, result: ForwardResult | None = None) -> list[dict]:
        if self.story_pb is None:
            return []
        if result is None:
            result = forward(params, self.cfg, self.story_pb.tokens, None,
                             capture=Capture(attention=True))
        shots = []
        for b, sent in enumerate(self.story):
            n = len(sent.words) + 1
            patterns = {
                f"{layer}.{head}": np.round(att[b, head, :n, :n].astype(np.float64),
                                            SNAPSHOT_DECIMALS).tolist()
                for layer, att in enumerate(result.attention)
                for head in range(att.shape[1])
            }
            shots.append({
                "sentence": " ".join(sent.words),
                "tokens": ["<bos>", *sent.words],
                "pronouns": [[i + 1, a + 1] for i, a in enumerate(sent.antecedent) if a >= 0],
                "patterns": patterns,
            })
        return shots

    def role_candidates(self, probe: dict, thresholds) -> dict[str, list[tuple[int, int]]]:
        """Heads whose final scores pass their role's threshold: the ones worth ablating."""
        candidates: dict[str, list[tuple[int, int]]] = {role: [] for role in ROLES}
        for row in probe["heads"]:
            for role in ROLES:
                if row["scores"][role] >= thresholds.role_threshold(role, self.shares):
                    candidates[role].append((row["layer"], row["head"]))
        return {role: heads for role, heads in candidates.items() if heads}

    def measure_silencings(self, params, sets, roles, enough=None, streams=None) -> dict:
        """The final ablation's passes for `sets` of silenced heads (analysis/ablation.py), on
        the ablation sentences: {frozenset of heads: {role: {"loss", "acc"}}}; `enough`
        (asked after each set) may end them early; `streams` carries the clean pass's
        streams from one call on these weights to the next."""
        return measure_silencings(params, self.cfg, self.ablation_pb, sets, roles,
                                  self.heldout_targets, enough, streams)

    def name_specialists(self, params, probe: dict, thresholds,
                         measured: dict | None = None) -> tuple[list[dict], list[dict]]:
        candidates = self.role_candidates(probe, thresholds)
        rows, specialists = name_specialists(params, self.cfg, self.ablation_pb, candidates,
                                             self.heldout_targets, measured)
        by_head = {(r["layer"], r["head"]): r for r in probe["heads"]}
        trackers = [(sp["layer"], sp["head"]) for sp in specialists if sp["role"] == "pronoun"]
        division = self.pronoun_division(params, trackers) if trackers else None
        for sp in specialists:
            row = by_head[(sp["layer"], sp["head"])]
            sp["score"] = row["scores"][sp["role"]]
            if sp["role"] == "pronoun":
                sp["heldout_acc"] = row["pronoun_acc_heldout"]
                sp["baseline_acc"] = self.baseline["heldout"]
                sp["by_pronoun"] = division["by_head"][f"{sp['layer']}.{sp['head']}"]
                sp["team_heldout_acc"] = division["team"]
            elif sp["role"] in self.role_baselines:
                # attention argmax on the held-out sites, against a head without the role
                sp["heldout_acc"] = (row.get("role_acc_heldout") or {}).get(sp["role"])
                sp["baseline_acc"] = self.role_baselines[sp["role"]]
            else:
                sp["heldout_acc"] = None
                sp["baseline_acc"] = None
        # the best proven head of each role: highest held-out accuracy (pronoun, verb, noun)
        # or score, then the largest loss its silencing costs; the one the pictures follow
        for role in {sp["role"] for sp in specialists}:
            mine = [sp for sp in specialists if sp["role"] == role]
            top = max(mine, key=lambda sp: (
                sp["heldout_acc"] if sp["heldout_acc"] is not None else sp["score"],
                sp["ablation"]["loss_after"] - sp["ablation"]["loss_before"]))
            for sp in mine:
                sp["best"] = sp is top
        return rows, specialists

    def pronoun_division(self, params, heads: list[tuple[int, int]]) -> dict:
        """How the pronoun trackers share the work on the held-out sentences: each head's
        argmax accuracy per pronoun form ("she", "their", ...), and the team's accuracy when
        their attention is pooled (summed) before taking the argmax."""
        pb = self.heldout_pb
        result = forward_by_rows(params, self.cfg, pb.tokens, pb.targets,
                                 capture=Capture(attention=True))
        rows = {(l, h): result.attention[l][pb.pron_b, h, pb.pron_q, :] for l, h in heads}
        words = [self.heldout_sentences[int(b)].words[int(q) - 1]
                 for b, q in zip(pb.pron_b, pb.pron_q)]
        by_head = {}
        for (layer, head), row in rows.items():
            hit = row.argmax(axis=-1) == pb.pron_k
            by_head[f"{layer}.{head}"] = {
                w: float(np.mean([h for h, ww in zip(hit, words) if ww == w]))
                for w in sorted(set(words))
            }
        pooled = sum(rows.values())
        team = float((pooled.argmax(axis=-1) == pb.pron_k).mean()) if words else 0.0
        return {"by_head": by_head, "team": team}
