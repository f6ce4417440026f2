"""The narrators: every component of the Fabric tells the run's story from the chronicle.

    tell(events, "gradient") -> Story          # one voice; None = the ensemble
    NARRATORS["head"].tell(events, layer=1, head=2)
    plain_log(events) -> list[str]             # the same moments, as a factual log
    ticker_line(moment_event, seed) -> str     # one live line during `fabric train`

Narrators read only chronicle events (plain dicts, docs/chronicle.md); the same run always
tells the same story, word for word.
"""

from importlib import import_module

# Loaded on first use (PEP 562), so that `fabric infer`, which needs only the inference
# voice (narrate.inference), does not pay for every narrator at start-up.
_EXPORTS = {
    "NARRATORS": "registry", "Narrator": "registry", "tell": "registry",
    "ticker_line": "registry", "plain_log": "log", "Chapter": "story", "Story": "story",
}
__all__ = ["NARRATORS", "Chapter", "Narrator", "Story", "plain_log", "tell", "ticker_line"]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fabric_cli.narrate' has no attribute {name!r}")
    value = getattr(import_module(f"fabric_cli.narrate.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
