"""A small map of a head's query/key space: where its queries at pronouns sit beside the keys
of their antecedents and of the other words before them, recorded at every probe for every
head (the head a picture follows is known only at the end), drawn by views/qkspace.py.

The projection is chosen so that what the picture shows is what the head computes:

- x is the direction of the head's mean query at the pronouns (unit vector u). A key's x is
  k·u, so keys further right get a higher score q̄·k/√d_head from the mean pronoun query, and
  the keys' left-to-right order is their order under that query's attention scores.
- y is the direction that best separates antecedent keys from the other keys once x is taken
  out: the mean antecedent key minus the mean other key, made orthogonal to u (if that is
  zero, the keys' main direction of spread orthogonal to u).
- `kept` is the share of the points' squared length the plane holds (Σ|projection|²/Σ|v|²);
  the rest lies in the d_head − 2 directions a page cannot show, and the view says so.

Only a handful of pronouns are drawn (the first `PICTURE_PRONOUNS` of the measure sentences
with words before them); `alignment` holds measures.qk_alignment's numbers for the same
head over all the measure sentences (the gap the Head tells), written under each panel.
"""

from __future__ import annotations

import numpy as np

PICTURE_PRONOUNS = 6  # a handful: enough to see a cloud, few enough to keep the probe cheap
DIGITS = 4  # significant digits of a stored coordinate (a character cell holds far fewer)


def _r(x: float) -> float:
    return float(f"{x:.{DIGITS}g}")


def plane(queries: np.ndarray, antecedents: np.ndarray, others: np.ndarray) -> np.ndarray:
    """The orthonormal basis (2, HS) described in the module docstring."""
    mean_q = queries.mean(0)
    n = np.linalg.norm(mean_q)
    u = mean_q / n if n > 0 else np.eye(queries.shape[1])[0]
    d = antecedents.mean(0) - others.mean(0)
    d = d - (d @ u) * u
    if np.linalg.norm(d) <= 1e-9 * max(1.0, float(np.abs(others).max(initial=0.0))):
        keys = np.concatenate([antecedents, others])
        flat = keys - np.outer(keys @ u, u)
        d = np.linalg.svd(flat - flat.mean(0), full_matrices=False)[2][0]
        d = d - (d @ u) * u
    if np.linalg.norm(d) <= 1e-12:  # every key on the query's line: any orthogonal axis
        d = np.eye(len(u))[int(np.argmin(np.abs(u)))]
        d = d - (d @ u) * u
    return np.stack([u, d / np.linalg.norm(d)])


def _sites(pb, n: int) -> list[tuple[int, int, int, list[int]]]:
    """(sentence, pronoun position, antecedent position, other positions) of the first `n`
    pronouns with at least one other word before them (not <bos>, not the antecedent)."""
    sites = []
    for b, q, k in zip(pb.pron_b, pb.pron_q, pb.pron_k):
        rest = [j for j in range(1, int(q)) if j != int(k)]
        if rest:
            sites.append((int(b), int(q), int(k), rest))
        if len(sites) == n:
            break
    return sites


def head_space(queries: np.ndarray, antecedents: np.ndarray, others: np.ndarray) -> dict:
    """One head's picture from its queries (S,HS) at the pronouns, its antecedents' keys (S,HS)
    and the other words' keys (N,HS)."""
    queries, antecedents, others = (a.astype(np.float64) for a in (queries, antecedents,
                                                                    others))
    basis = plane(queries, antecedents, others)
    points = np.concatenate([queries, antecedents, others])
    total = float((points ** 2).sum())
    kept = float(((points @ basis.T) ** 2).sum()) / total if total > 0 else 0.0

    def xy(vs: np.ndarray) -> list[list[float]]:
        return [[_r(x), _r(y)] for x, y in (vs @ basis.T).tolist()]

    return {"queries": xy(queries), "antecedents": xy(antecedents), "others": xy(others),
            "kept": kept}


def alignments(q: np.ndarray, k: np.ndarray, pb) -> list[dict]:
    """measures.qk_alignment's antecedent, others and gap for every head of one layer at once
    (q, k: (B,NH,T,HS)); tests check it against qk_alignment head by head."""
    P, T = len(pb.pron_q), k.shape[2]
    scores = np.einsum("pnh,pnth->pnt", q[pb.pron_b, :, pb.pron_q], k[pb.pron_b]) / np.sqrt(
        q.shape[-1])  # (P,NH,T)
    ante = scores[np.arange(P), :, pb.pron_k].mean(0)  # (NH,)
    cols = np.arange(T)
    rest = (cols >= 1) & (cols < pb.pron_q[:, None]) & (cols != pb.pron_k[:, None])  # (P,T)
    has = rest.any(1)
    others = ((scores * rest[:, None]).sum(-1)[has] / rest.sum(1)[has, None]).mean(0)
    return [{"antecedent": float(a), "others": float(o), "gap": float(a - o)}
            for a, o in zip(ante, others)] if has.any() else [{} for _ in ante]


def qk_space(streams, pb) -> dict | None:
    """Every head's map at this probe: `{"pronouns", "heads": {"L.H": {"queries",
    "antecedents", "others", "kept", "alignment"}}}` (docs/chronicle.md)."""
    sites = _sites(pb, PICTURE_PRONOUNS)
    if not sites:
        return None
    b = np.array([s[0] for s in sites])
    ob = np.concatenate([[s[0]] * len(s[3]) for s in sites]).astype(int)
    ot = np.concatenate([s[3] for s in sites]).astype(int)
    heads = {}
    for layer, (q, k) in enumerate(zip(streams.q, streams.k)):
        qs = q[b, :, [s[1] for s in sites]]  # (S,NH,HS)
        ks = k[b, :, [s[2] for s in sites]]
        os_ = k[ob, :, ot]  # (N,NH,HS)
        for head, align in enumerate(alignments(q, k, pb)):
            found = head_space(qs[:, head], ks[:, head], os_[:, head])
            found["alignment"] = align or None
            heads[f"{layer}.{head}"] = found
    return {"pronouns": len(sites), "heads": heads}


def qk_frames(events, layer: int, head: int) -> list[dict]:
    """The first and the last probe that recorded this head's map, each as its map with the
    probe's `step` (one frame if only one probe did; none in older chronicles)."""
    found = []
    for e in events:
        space = (e.get("qk_space") or {}) if e.get("type") == "probe" else {}
        mine = (space.get("heads") or {}).get(f"{layer}.{head}")
        if isinstance(mine, dict):
            found.append({"step": int(e.get("step", 0)), **mine})
    return found[:1] + found[-1:] if len(found) > 1 else found
