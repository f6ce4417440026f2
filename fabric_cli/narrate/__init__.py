"""The narrators: every component of the Fabric tells the run's story from the chronicle.

    tell(events, "gradient") -> Story          # one voice; None = the ensemble
    NARRATORS["head"].tell(events, layer=1, head=2)
    plain_log(events) -> list[str]             # the same moments, as a factual log
    ticker_line(moment_event, seed) -> str     # one live line during `fabric train`

Narrators read only chronicle events (plain dicts, docs/chronicle.md); the same run always
tells the same story, word for word.
"""

from fabric_cli.narrate.log import plain_log
from fabric_cli.narrate.registry import NARRATORS, Narrator, tell, ticker_line
from fabric_cli.narrate.story import Chapter, Story

__all__ = ["NARRATORS", "Chapter", "Narrator", "Story", "plain_log", "tell", "ticker_line"]
