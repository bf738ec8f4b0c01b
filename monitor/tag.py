"""Article + topic rules -> topic tags with evidence and facets (the tagging API). No I/O.

Callers read the rule file themselves: `parse_taxonomy(path.read_text(), file=str(path))`.
The implementation lives in `monitor.tagging`; the rule format is documented in
`config/topics.toml` and `docs/tagging.md`.
"""

from __future__ import annotations

from monitor.tagging.engine import (
    FACET_KINDS,
    Tags,
    Taxonomy,
    TopicScore,
    explain_scores,
    explain_tag,
    score_article,
    tag_article,
)
from monitor.tagging.normalise import normalise_text
from monitor.tagging.rules import parse_taxonomy

__all__ = [
    "FACET_KINDS",
    "Tags",
    "Taxonomy",
    "TopicScore",
    "explain_scores",
    "explain_tag",
    "normalise_text",
    "parse_taxonomy",
    "score_article",
    "tag_article",
]
