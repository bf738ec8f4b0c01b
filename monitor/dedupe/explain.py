"""An item's dedupe decisions (exact, near-duplicate, story) in plain words. No I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.models import Item

MEMBERS_SHOWN = 20  # a story's members listed by `explain`; the rest are counted


@dataclass(frozen=True, slots=True)
class DedupeFacts:
    """What `explain` knows about one item, gathered from the store by the caller."""

    item: Item
    near: Mapping[str, Any] | None = None  # the near layer's recorded decision
    story: Mapping[str, Any] | None = None  # the story layer's recorded decision
    recorded: bool = False  # False: stored before the layers existed
    members: Sequence[Item] = ()  # the story's stored items
    seed_refs: Sequence[str] = ()  # seed files in the story now
    seed_titles: Mapping[str, str] = field(default_factory=dict)
    seed_dates: Mapping[str, str] = field(default_factory=dict)  # "2020-02-02, from metadata"
    items_by_key: Mapping[str, Item] = field(default_factory=dict)  # URL -> stored item


def explain_dedupe(facts: DedupeFacts) -> list[str]:
    """Lines for `monitor explain`: one block per layer."""
    return [*_exact(facts.item), *_near(facts), *_story(facts)]


def _exact(item: Item) -> list[str]:
    lines = ["exact layer (GUID, canonical URL, normalised text):"]
    dup = item.duplicate_of
    if dup is not None and dup.method == "canonical_url":
        lines.append(f"  duplicate: same canonical URL as {dup.ref} (exact match, score 1.00)")
    elif dup is not None and dup.method == "text_hash":
        lines.append(f"  duplicate: same normalised text as {dup.ref} (exact match, score 1.00)")
    else:
        lines.append(
            "  no match: no stored item has the same GUID in this source, the same canonical "
            "URL, or the same normalised text"
        )
    return lines


def _near(facts: DedupeFacts) -> list[str]:
    lines = ["near-duplicate layer (MinHash over word 3-shingles):"]
    near = facts.near
    dup = facts.item.duplicate_of
    if not facts.recorded:
        if dup is not None and dup.method.startswith("minhash"):
            lines.append(
                f"  {facts.item.status}: {dup.kind} {dup.ref}, method {dup.method}, "
                f"score {dup.similarity:.2f}"
            )
        else:
            lines.append("  not recorded: the item was stored before this layer existed")
        return lines
    if near is None:
        lines.append("  not consulted: the exact layer had already found a duplicate")
        return lines
    if near.get("result") != "match":
        lines.append(f"  {near.get('explanation', 'no near-duplicate')}")
        return lines
    kind, ref = near["kind"], near["ref"]
    outcome = "known (a copy of a seed)" if kind == "seed" else "duplicate (of an earlier item)"
    what = "estimated Jaccard" if near["method"] == "minhash-jaccard" else "estimated containment"
    lines += [
        f"  {outcome}: method {near['method']}, score {near['similarity']:.2f} >= threshold "
        f"{near['threshold']:.2f} ({what})",
        f"  compared with: {_describe(ref, kind, facts)}",
        f"  Jaccard {near['jaccard']:.2f}, containment {near['containment']:.2f}, "
        f"{near['shingles']} shingles; thresholds: Jaccard {near['jaccard_threshold']:.2f}, "
        f"containment {near['containment_threshold']:.2f}",
    ]
    return lines


def _story(facts: DedupeFacts) -> list[str]:
    item = facts.item
    lines = ["story layer (same event: title and lead, names, numbers and dates):"]
    story = facts.story
    if item.story_id is None:
        lines.append("  no story: the item was stored before this layer existed")
        return lines
    if story is not None:
        reasons = "; ".join(story.get("reasons", ())) or "no shared names or title words"
        if story.get("corrected"):  # split off its story by the analyst (issue 16)
            lines.append(f"  {story['explanation']}")
        elif story["is_new"] and story.get("compared_with") is None:
            lines.append(
                f"  new story {item.story_id}: no earlier article shared a name or title word "
                "within the window"
            )
        elif story["is_new"]:
            lines.append(
                f"  new story {item.story_id}: best candidate scored {story['score']:.2f} < "
                f"threshold {story['threshold']:.2f}"
            )
            lines.append(f"  compared with: {_describe(story['compared_with'], None, facts)}")
            lines.append(f"  why: {reasons}")
        else:
            lines.append(
                f"  joined story {item.story_id}: score {story['score']:.2f} >= threshold "
                f"{story['threshold']:.2f}"
            )
            if "mean" in story:
                lines.append(
                    f"  as a whole: mean {story['mean']:.2f} over {story['members_compared']} "
                    f"member(s) >= {story['mean_threshold']:.2f}"
                )
            lines.append(f"  compared with: {_describe(story['matched_key'], None, facts)}")
            lines.append(f"  why: {reasons}")
        lines += _time(story)
    sources = sorted({m.source for m in facts.members})
    lines.append(
        f"  story {item.story_id}: {len(facts.members)} item(s) from {len(sources)} source(s)"
        + (f": {', '.join(sources)}" if sources else "")
    )
    for member in facts.members[:MEMBERS_SHOWN]:
        marker = " (this item)" if member.id == item.id else ""
        lines.append(
            f"    item {member.id} [{member.status}] {member.source}: {member.title}{marker}"
        )
    if len(facts.members) > MEMBERS_SHOWN:
        lines.append(f"    ... and {len(facts.members) - MEMBERS_SHOWN} more")
    if facts.seed_refs:
        lines.append("  seeds in this story (the analyst knows this event):")
        for ref in facts.seed_refs:
            title = facts.seed_titles.get(ref)
            dated = facts.seed_dates.get(ref) or "undated"
            lines.append(f"    {ref}" + (f": {title}" if title else "") + f" ({dated})")
        if item.status == "new":
            lines.append("  in the digest: a follow-up of a known story")
    return lines


def _time(story: Mapping[str, Any]) -> list[str]:
    """The time evidence: the date the decision used, the story's span, refused candidates."""
    if "date_basis" not in story:
        return []  # decided before stories had spans
    date = (story.get("date") or "")[:10]
    span = story.get("span") or []
    shown = " – ".join(dict.fromkeys(d[:10] for d in span)) if span else "none"
    window, longest = story.get("window_days", 7), story.get("max_span_days", 14)
    lines = [
        f"  time: {story['date_basis'] or 'dated'} {date or 'undated'}; story span {shown} "
        f"(an article joins within the span ± {window} days, and a story never spans more "
        f"than {longest} days)"
    ]
    lines += [f"  refused {rule}" for rule in story.get("refused", ())]
    return lines


def _describe(key: str, kind: str | None, facts: DedupeFacts) -> str:
    """A seed file with its title, or an item with its id, source and title."""
    if kind == "seed" or key in facts.seed_titles:
        title = facts.seed_titles.get(key)
        return f"seed {key}" + (f" ({title})" if title else "")
    found = facts.items_by_key.get(key)
    if found is None:
        return key
    return f"item {found.id} from {found.source}: {found.title} <{found.url}>"
