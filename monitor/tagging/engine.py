"""Compiled taxonomy and the one-pass matcher: article title + text -> topic tags and facets.
No I/O."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import ahocorasick

from monitor.models import TopicTag, rank_tags
from monitor.tagging.normalise import TermPattern, is_word_char, normalise_text

ANY_LANGUAGE = "any"
FACET_KINDS = ("countries", "organisations", "officials")

Role = Literal["weighted", "all", "none", "near", "facet"]


@dataclass(frozen=True, slots=True)
class Term:
    """One term as written in a rule file, with where it belongs."""

    text: str  # as written, shown as evidence
    lang: str  # a configured language or "any"
    pattern: TermPattern
    role: Role
    owner: int  # index of the topic or facet value
    slot: int = 0  # all-group index, or near-rule index / part index packed by the caller
    part: int = 0  # near rule: which part of the rule
    weight: float = 0.0


@dataclass(frozen=True, slots=True)
class Near:
    """Proximity rule: every part occurs within `within` words of an occurrence of part 0."""

    label: str  # shown as evidence, e.g. "terroris*… ~ @cooperation (within 20 words)"
    lang: str
    parts: int
    within: int
    weight: float


@dataclass(frozen=True, slots=True)
class Topic:
    id: str
    label: str  # the long name: `explain`, section headings, the digest's legend
    threshold: float
    all_groups: int  # how many `all` groups must each match
    near: tuple[Near, ...]
    short: str = ""  # the digest's chip label; empty: the long label


@dataclass(frozen=True, slots=True)
class Settings:
    languages: tuple[str, ...] = ("en", "ru", "vi", "id")
    threshold: float = 5.0
    weight: float = 1.0
    title_weight: float = 2.0
    max_count: int = 3
    max_suffix: int = 4
    min_terms: int = 2


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """A parsed, validated and compiled rule file. Build it with `parse_taxonomy`."""

    settings: Settings
    topics: tuple[Topic, ...]
    facet_values: tuple[tuple[str, str], ...]  # (kind, canonical value), in file order
    terms: tuple[Term, ...]
    automaton: Any = field(repr=False, compare=False)  # ahocorasick.Automaton over prefixes

    @property
    def topic_ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.topics)

    def weight_of(self, topic_id: str, term: str, lang: str) -> float | None:
        """The weight of a weighted term (or near rule) of a topic, for explanations."""
        index = self.topic_ids.index(topic_id) if topic_id in self.topic_ids else -1
        for t in self.terms:
            if t.owner == index and t.role == "weighted" and t.text == term and t.lang == lang:
                return t.weight
        if index >= 0:
            for rule in self.topics[index].near:
                if rule.label == term:
                    return rule.weight
        return None


def build_automaton(terms: Iterable[Term]) -> Any:
    """One automaton over every term's literal prefix; a key maps to all terms sharing it."""
    by_prefix: dict[str, list[int]] = defaultdict(list)
    for index, term in enumerate(terms):
        by_prefix[term.pattern.prefix].append(index)
    automaton = ahocorasick.Automaton()
    for prefix, indexes in by_prefix.items():
        automaton.add_word(prefix, tuple(indexes))
    if by_prefix:
        automaton.make_automaton()
    return automaton


@dataclass(frozen=True, slots=True)
class TopicScore:
    """A candidate topic of one article, tagged or not, with everything an explanation needs."""

    id: str
    score: float
    threshold: float
    evidence: tuple[tuple[str, str, int], ...]  # (term, lang, count), strongest first
    contributions: tuple[float, ...]  # score added by each evidence entry
    status: Literal["tagged", "below", "excluded", "incomplete"]
    excluded_by: tuple[str, ...] = ()

    def to_tag(self) -> TopicTag:
        return TopicTag(self.id, self.score, self.threshold, self.evidence)


@dataclass(frozen=True, slots=True)
class Tags:
    """What tagging says about one article."""

    topics: tuple[TopicTag, ...]
    facets: dict[str, tuple[str, ...]]


Hits = dict[int, list[tuple[int, int]]]  # term index -> (start, end) spans in folded text


def find_terms(taxonomy: Taxonomy, text: str, allowed: frozenset[str] | None) -> Hits:
    """Every term occurrence in normalised `text`. One automaton pass."""
    hits: Hits = defaultdict(list)
    if not text or not taxonomy.terms:
        return hits
    terms = taxonomy.terms
    size = len(text)
    for end, indexes in taxonomy.automaton.iter(text):
        for index in indexes:
            term = terms[index]
            if allowed is not None and term.lang not in allowed:
                continue
            start = end - len(term.pattern.prefix) + 1
            if start > 0 and is_word_char(text[start - 1]):
                continue  # the match starts inside a word
            if term.pattern.rest is None:
                if end + 1 < size and is_word_char(text[end + 1]):
                    continue  # the match ends inside a word
                stop = end + 1
            else:
                tail = term.pattern.rest.match(text, end + 1)
                if tail is None:
                    continue
                stop = tail.end()
            hits[index].append((start, stop))
    return hits


def _drop_covered(indexes: list[int], hits: Hits) -> Hits:
    """Within one topic the longest match wins: "nuclear deal" does not also count "nuclear"."""
    spans = sorted(
        ((start, -stop, index) for index in indexes for start, stop in hits.get(index, ())),
    )
    kept: Hits = defaultdict(list)
    reach = -1
    for start, neg_stop, index in spans:
        stop = -neg_stop
        if stop <= reach:
            continue  # inside a longer match that starts at or before it
        reach = max(reach, stop)
        kept[index].append((start, stop))
    return kept


def _word_numbers(text: str, hits: Hits, near_terms: list[int]) -> dict[int, int]:
    """Offset -> word number for the occurrences of proximity terms; one scan of the text."""
    offsets = sorted({start for index in near_terms for start, _ in hits.get(index, ())})
    numbers: dict[int, int] = {}
    words, previous = 0, 0
    for offset in offsets:
        words += text.count(" ", previous, offset)
        numbers[offset] = words
        previous = offset
    return numbers


def _near_count(rule: Near, parts: dict[int, list[int]]) -> int:
    """How many occurrences of part 0 have every other part within `rule.within` words."""
    if len(parts) < rule.parts or not parts.get(0):
        return 0
    count = 0
    for anchor in parts[0]:
        if all(any(abs(w - anchor) <= rule.within for w in parts[p]) for p in range(1, rule.parts)):
            count += 1
    return count


def score_article(
    taxonomy: Taxonomy, *, title: str, text: str, language: str | None
) -> tuple[tuple[TopicScore, ...], dict[str, tuple[str, ...]]]:
    """Every topic with at least one matched term (tagged or not) and the facets.

    The cost is one automaton pass over the title and one over the text, plus work per
    match: it does not grow with the number of rules that do not match.
    """
    settings = taxonomy.settings
    lang = (language or "").split("-")[0].split("_")[0].lower()
    allowed = frozenset({lang, ANY_LANGUAGE}) if lang in settings.languages else None
    norm_title, norm_text = normalise_text(title), normalise_text(text)
    title_hits = find_terms(taxonomy, norm_title, allowed)
    text_hits = find_terms(taxonomy, norm_text, allowed)

    found_facets: set[int] = set()
    per_topic: dict[int, list[int]] = defaultdict(list)
    near_terms: list[int] = []
    for index in set(title_hits) | set(text_hits):
        term = taxonomy.terms[index]
        if term.role == "facet":
            found_facets.add(term.owner)
        else:
            per_topic[term.owner].append(index)
            if term.role == "near":
                near_terms.append(index)
    title_words = _word_numbers(norm_title, title_hits, near_terms)
    text_words = _word_numbers(norm_text, text_hits, near_terms)

    scores: list[TopicScore] = []
    for owner, indexes in per_topic.items():
        found = _score_topic(
            taxonomy, owner, indexes, (title_words, title_hits), (text_words, text_hits)
        )
        if found is not None:
            scores.append(found)
    scores.sort(key=lambda s: (-s.score, s.id))
    facets: dict[str, list[str]] = {kind: [] for kind in FACET_KINDS}
    for owner, (kind, value) in enumerate(taxonomy.facet_values):
        if owner in found_facets:
            facets.setdefault(kind, []).append(value)
    return tuple(scores), {k: tuple(v) for k, v in facets.items()}


def _score_topic(
    taxonomy: Taxonomy,
    owner: int,
    indexes: list[int],
    title: tuple[dict[int, int], Hits],
    body: tuple[dict[int, int], Hits],
) -> TopicScore | None:
    settings = taxonomy.settings
    topic = taxonomy.topics[owner]
    weighted = [i for i in indexes if taxonomy.terms[i].role == "weighted"]
    title_kept, body_kept = _drop_covered(weighted, title[1]), _drop_covered(weighted, body[1])
    evidence: list[tuple[float, str, str, int]] = []
    groups_met: set[int] = set()
    excluded: list[str] = []
    near_parts: dict[int, tuple[dict[int, list[int]], dict[int, list[int]]]] = {}
    score = 0.0
    for index in sorted(indexes):
        term = taxonomy.terms[index]
        in_title = len(title[1].get(index, ()))
        in_text = len(body[1].get(index, ()))
        if term.role == "weighted":
            in_title = len(title_kept.get(index, ()))
            in_text = len(body_kept.get(index, ()))
            if not in_title + in_text:
                continue
            counted = min(in_text + settings.title_weight * in_title, settings.max_count)
            gain = term.weight * counted
            score += gain
            evidence.append((gain, term.text, term.lang, in_title + in_text))
        elif term.role == "all":
            groups_met.add(term.slot)
            evidence.append((0.0, term.text, term.lang, in_title + in_text))
        elif term.role == "none":
            excluded.append(term.text)
        else:  # near: collect offsets per part, scored below
            t_parts, b_parts = near_parts.setdefault(term.slot, ({}, {}))
            t_parts.setdefault(term.part, []).extend(
                title[0][o] for o, _ in title[1].get(index, ())
            )
            b_parts.setdefault(term.part, []).extend(body[0][o] for o, _ in body[1].get(index, ()))
    for slot, (t_parts, b_parts) in near_parts.items():
        rule = topic.near[slot]
        t_count = _near_count(rule, {k: v for k, v in t_parts.items() if v})
        b_count = _near_count(rule, {k: v for k, v in b_parts.items() if v})
        if t_count + b_count:
            counted = min(b_count + settings.title_weight * t_count, settings.max_count)
            score += rule.weight * counted
            evidence.append((rule.weight * counted, rule.label, rule.lang, t_count + b_count))
    if not evidence and not excluded:
        return None
    evidence.sort(key=lambda e: (-e[0], e[1], e[2]))
    score = round(score, 3)
    # Evidence needs `min_terms` distinct terms; a match in the title counts as one more,
    # because a title names what the article is about (one term repeated in the text is not).
    distinct = sum(1 for gain, *_ in evidence if gain > 0) + (1 if title_kept else 0)
    status: Literal["tagged", "below", "excluded", "incomplete"]
    if excluded:
        status = "excluded"
    elif len(groups_met) < topic.all_groups:
        status = "incomplete"
    elif score >= topic.threshold and distinct >= settings.min_terms:
        status = "tagged"
    else:
        status = "below"
    return TopicScore(
        id=topic.id,
        score=score,
        threshold=topic.threshold,
        evidence=tuple((t, lang, n) for _, t, lang, n in evidence),
        contributions=tuple(round(g, 3) for g, _, _, _ in evidence),
        status=status,
        excluded_by=tuple(sorted(set(excluded))),
    )


def tag_article(taxonomy: Taxonomy, *, title: str, text: str, language: str | None) -> Tags:
    """Topics at or above their threshold, strongest first (`rank_tags`), and facets.

    `language` (e.g. "ru", "en-GB") limits matching to that language's terms plus "any" terms
    when it is a configured language; otherwise every language's terms apply.
    """
    scores, facets = score_article(taxonomy, title=title, text=text, language=language)
    return Tags(rank_tags(s.to_tag() for s in scores if s.status == "tagged"), facets)


def _fmt(number: float) -> str:
    return f"{number:g}"


def explain_tag(taxonomy: Taxonomy, tag: TopicTag) -> str:
    """One line for a human: "diplomacy: score 7.5 ≥ threshold 5: 'Lavrov' ×3 (ru, w 2), ..."."""
    parts = []
    for term, lang, count in tag.evidence:
        weight = taxonomy.weight_of(tag.id, term, lang)
        how = f"{lang}, weight {_fmt(weight)}" if weight is not None else f"{lang}, required"
        parts.append(f"matched '{term}' ×{count} ({how})")
    relation = "≥" if tag.score >= tag.threshold else "<"
    head = f"{tag.id}: score {_fmt(tag.score)} {relation} threshold {_fmt(tag.threshold)}"
    return head + (": " + "; ".join(parts) if parts else "")


def explain_scores(scores: Iterable[TopicScore]) -> list[str]:
    """Lines for every candidate topic, including the ones that were not tagged and why."""
    lines = []
    for s in scores:
        matched = ", ".join(
            f"'{term}' ×{count} ({lang}, +{_fmt(gain)})"
            for (term, lang, count), gain in zip(s.evidence, s.contributions, strict=True)
        )
        below = (
            f"score {_fmt(s.score)} ≥ threshold {_fmt(s.threshold)} but too few distinct terms"
            if s.score >= s.threshold
            else f"score {_fmt(s.score)} < threshold {_fmt(s.threshold)}"
        )
        verdict = {
            "tagged": f"score {_fmt(s.score)} ≥ threshold {_fmt(s.threshold)}",
            "below": f"{below} (not tagged)",
            "excluded": f"excluded by {', '.join(repr(t) for t in s.excluded_by)} (not tagged)",
            "incomplete": "a required `all` group did not match (not tagged)",
        }[s.status]
        lines.append(f"{s.id}: {verdict}" + (f": {matched}" if matched else ""))
    return lines
