"""Compiled taxonomy and the one-pass matcher: article title + text -> topic tags and facets.
No I/O."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import ahocorasick

from monitor.models import TopicTag, rank_tags
from monitor.tagging.normalise import TermPattern, is_word_char, normalise_text

ANY_LANGUAGE = "any"
FACET_KINDS = ("countries", "organisations", "officials")

Role = Literal["weighted", "all", "none", "near", "facet", "mask"]


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
    # An affixed form the language's rule adds (`morphology.term_forms`): the index of the
    # term as written, whose evidence its matches count as; -1 for a term as written.
    base: int = -1


@dataclass(frozen=True, slots=True)
class Near:
    """Proximity rule: every part occurs within `within` words of an occurrence of part 0."""

    label: str  # shown as evidence, e.g. "terroris*… ~ @cooperation (within 20 words)"
    lang: str
    parts: int
    within: int
    weight: float
    # Per part: the facet kinds whose values also match it ("$countries"); empty: terms only.
    facets: tuple[tuple[str, ...], ...] = ()
    # Parts written the same way (after part 0) must be matched by different values or
    # occurrences: ["@meeting", "$countries", "$countries"] needs two countries.
    repeats: tuple[tuple[int, ...], ...] = ()
    lead_only: bool = False  # anchors count only in the title or the lead (issue 13)


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
    # Passing vs topical mentions (issue 13): see `_Places` and docs/tagging.md.
    lead_words: int = 40  # the lead: the text's first words
    lead_weight: float = 1.5  # a topical lead occurrence counts this many times
    context_words: int = 25  # another term of the topic this close makes a mention topical
    list_words: int = 8  # other topics' terms this close ...
    list_topics: int = 2  # ... from this many other topics: the mention is a list item
    list_separators: int = 4  # this many list separators within list_words: an enumeration
    passing_weight: float = 0.25  # a passing occurrence counts this much
    core_weight: float = 3.0  # a term this heavy used topically twice is two pieces of evidence


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """A parsed, validated and compiled rule file. Build it with `parse_taxonomy`."""

    settings: Settings
    topics: tuple[Topic, ...]
    facet_values: tuple[tuple[str, str], ...]  # (kind, canonical value), in file order
    terms: tuple[Term, ...]
    automaton: Any = field(repr=False, compare=False)  # ahocorasick.Automaton over prefixes
    near_facet_kinds: frozenset[str] = frozenset()  # facet kinds that near rules use

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
    passing: tuple[int, ...] = ()  # per evidence entry: occurrences counted as passing

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


def _drop_covered(indexes: list[int], hits: Hits, terms: tuple[Term, ...]) -> Hits:
    """Within one topic the longest match wins: "nuclear deal" does not also count "nuclear".
    A word is evidence for one term of a topic only: of two matches that overlap, the one
    that starts first is kept ("dịch Covid-19" is `dịch covid`, not also `COVID 19`;
    "вице-премьер-министр" is `вице премьер*`, not also `премьер министр*`). Of two terms
    matching the same words, one written as is wins over one whose ending an inflection rule
    supplied: "риса" listed by hand is the evidence, not "рис"; then the one that spells out
    more of the words wins: "farmers" is evidence for `farmer*`, not `farm*`."""
    spans = sorted(
        (start, -stop, terms[index].pattern.inflected, -len(terms[index].pattern.prefix), index)
        for index in indexes
        for start, stop in hits.get(index, ())
    )
    kept: Hits = defaultdict(list)
    reach = -1
    for start, neg_stop, _, _, index in spans:
        stop = -neg_stop
        if start < reach:
            continue  # inside or across a match that starts before it
        reach = max(reach, stop)
        kept[index].append((start, stop))
    return kept


def _as_written(hits: Hits, terms: tuple[Term, ...]) -> Hits:
    """Matches of an affixed form (`Term.base`) moved to the term as written, in order;
    matches of `not` phrases dropped."""
    for index in [i for i in hits if terms[i].role == "mask"]:
        del hits[index]
    moved = [i for i in hits if terms[i].base >= 0]
    for index in moved:
        hits.setdefault(terms[index].base, []).extend(hits.pop(index))
        hits[terms[index].base].sort()
    return hits


def _word_numbers(text: str, offsets: Iterable[int]) -> dict[int, int]:
    """Offset -> word number for match offsets; one scan of the text."""
    numbers: dict[int, int] = {}
    words, previous = 0, 0
    for offset in sorted(set(offsets)):
        words += text.count(" ", previous, offset)
        numbers[offset] = words
        previous = offset
    return numbers


# A near-rule occurrence: (word number, identity). A term occurrence is identified by its
# position (-1 - word), a facet occurrence by the facet value (its index, >= 0), so two
# parts written the same way need two different countries, or two different words.
Occurrence = tuple[int, int]


def _near_anchors(rule: Near, parts: dict[int, list[Occurrence]], limit: int | None) -> list[int]:
    """The word numbers of part 0's occurrences (before word `limit`, when given) that have
    every other part within `rule.within` words; parts written the same way must be matched
    by as many different values or occurrences as they are repeated."""
    if len(parts) < rule.parts or not parts.get(0):
        return []
    groups = rule.repeats or tuple((p,) for p in range(1, rule.parts))
    anchors = []
    for anchor, _ in parts[0]:
        if limit is not None and anchor >= limit:
            continue
        if all(
            len({i for w, i in parts[g[0]] if abs(w - anchor) <= rule.within}) >= len(g)
            for g in groups
        ):
            anchors.append(anchor)
    return anchors


# What separates the items of a list, in folded text (và -> va, hoặc -> hoac).
_LIST_SEPARATOR = re.compile(r"[,;]| (?:and|or|as well as|и|или|а также|va|hoac|dan|atau|serta) ")


@dataclass(slots=True)
class _Places:
    """Where a text's topic terms sit, to tell a topical mention from a passing one.

    An occurrence in the text is
    - a **list item** when terms of `list_topics` other topics occur within `list_words`
      words, each separated from it by a comma, a semicolon or "and"/"or" ("cooperation in
      trade, energy, culture and education"; not "nuclear energy cooperation"), or when
      `list_separators` separators sit within `list_words` words (a dense enumeration, as
      of goods in a list of exports): passing;
    - otherwise **topical** when it is in the lead (the first `lead_words` words), when the
      title or the lead names the topic (it is the main subject), or when another occurrence
      of the topic's terms that is not a list item sits within `context_words` words (a
      passage about the topic); else passing (one line of background).
    Title occurrences are always topical.
    """

    settings: Settings
    text: str  # the folded text
    words: dict[int, int]  # char offset of a match -> word number
    places: list[tuple[int, int]]  # (word number, topic owner), sorted
    # topic owner -> (word number, term index) of its weighted occurrences
    by_topic: dict[int, list[tuple[int, int]]]
    _listed: dict[tuple[int, int], bool] = field(default_factory=dict)
    _separators: list[int] | None = None  # word numbers followed by a list separator

    def _seps(self) -> list[int]:
        """Word numbers followed by a list separator, found once per text."""
        if self._separators is None:
            offsets = [m.start() for m in _LIST_SEPARATOR.finditer(self.text)]
            numbers = _word_numbers(self.text, offsets)
            self._separators = [numbers[o] for o in offsets]
        return self._separators

    def listed(self, word: int, owner: int) -> bool:
        key = (word, owner)
        if key not in self._listed:
            settings = self.settings
            reach, seps = settings.list_words, self._seps()
            # Words w with a separator between them and `word`: w > right or w <= left.
            i = bisect_left(seps, word)
            right = seps[i] if i < len(seps) else word + reach
            left = seps[i - 1] if i else word - reach - 1
            others: set[int] = set()
            for w, other in self.places[bisect_left(self.places, (word - reach, -1)) :]:
                if w > word + reach or len(others) >= settings.list_topics:
                    break
                if other != owner and (w > right or w <= left):
                    others.add(other)
            dense = bisect_right(seps, word + reach) - bisect_left(seps, word - reach)
            self._listed[key] = (
                len(others) >= settings.list_topics or dense >= settings.list_separators
            )
        return self._listed[key]

    def main_subject(self, owner: int) -> bool:
        """Does the lead name the topic outside a list (the lead says what happened)?"""
        lead = self.settings.lead_words
        return any(w < lead and not self.listed(w, owner) for w, _ in self.by_topic.get(owner, ()))

    def factor(self, word: int, owner: int, main: bool) -> float:
        """What one text occurrence counts: position weight, or `passing_weight`. `main`:
        the topic is the main subject (title or lead), so later mentions are not background."""
        settings = self.settings
        if self.listed(word, owner):
            return settings.passing_weight
        if word < settings.lead_words:
            return settings.lead_weight
        if main:
            return 1.0
        reach = settings.context_words
        found = self.by_topic.get(owner, [])
        for w, _term in found[bisect_left(found, (word - reach, -1)) :]:  # sorted by word
            if w > word + reach:
                break
            if w != word and not self.listed(w, owner):
                return 1.0
        return settings.passing_weight


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
    facet_terms: list[int] = []  # facet aliases that near rules use
    for index in set(title_hits) | set(text_hits):
        term = taxonomy.terms[index]
        if term.role == "facet":
            found_facets.add(term.owner)
            if taxonomy.facet_values[term.owner][0] in taxonomy.near_facet_kinds:
                facet_terms.append(index)
        else:
            per_topic[term.owner].append(index)
            if term.role == "near":
                near_terms.append(index)
    # Within one topic the longest match wins: "nuclear deal" does not also count "nuclear".
    # An affixed form's matches then count as its term's (`Term.base`).
    kept: dict[int, tuple[Hits, Hits]] = {}
    for owner, indexes in per_topic.items():
        # A `not` phrase (role "mask") takes part in the longest match and is then dropped:
        # "oil" inside "palm oil" is no evidence for energy.
        weighted = [i for i in indexes if taxonomy.terms[i].role in ("weighted", "mask")]
        kept[owner] = (
            _as_written(_drop_covered(weighted, title_hits, taxonomy.terms), taxonomy.terms),
            _as_written(_drop_covered(weighted, text_hits, taxonomy.terms), taxonomy.terms),
        )
        bases = [taxonomy.terms[i].base for i in indexes]
        if any(b >= 0 for b in bases):
            written = {b if b >= 0 else i for i, b in zip(indexes, bases, strict=True)}
            per_topic[owner] = sorted(written)
    if near_terms:
        near_terms += facet_terms
    title_words = _word_numbers(
        norm_title, (o for i in near_terms for o, _ in title_hits.get(i, ()))
    )
    offsets = [o for i in near_terms for o, _ in text_hits.get(i, ())]
    offsets += [o for _, body in kept.values() for spans in body.values() for o, _ in spans]
    text_words = _word_numbers(norm_text, offsets)
    by_topic = {
        owner: sorted((text_words[o], i) for i, spans in body.items() for o, _ in spans)
        for owner, (_, body) in kept.items()
    }
    places = sorted((w, owner) for owner, found in by_topic.items() for w, _ in found)
    where = _Places(settings, norm_text, text_words, places, by_topic)
    # Facet values where near rules can see them: kind -> (title, text) occurrences.
    facet_places: dict[str, tuple[list[Occurrence], list[Occurrence]]] = {}
    if near_terms:
        for index in facet_terms:
            owner = taxonomy.terms[index].owner
            in_title, in_text = facet_places.setdefault(taxonomy.facet_values[owner][0], ([], []))
            in_title.extend((title_words[o], owner) for o, _ in title_hits.get(index, ()))
            in_text.extend((text_words[o], owner) for o, _ in text_hits.get(index, ()))

    scores: list[TopicScore] = []
    for owner, indexes in per_topic.items():
        found = _score_topic(
            taxonomy,
            owner,
            indexes,
            kept[owner],
            (title_words, title_hits),
            text_hits,
            where,
            facet_places,
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
    kept: tuple[Hits, Hits],
    title: tuple[dict[int, int], Hits],
    body_hits: Hits,
    where: _Places,
    facet_places: dict[str, tuple[list[Occurrence], list[Occurrence]]],
) -> TopicScore | None:
    settings = taxonomy.settings
    topic = taxonomy.topics[owner]
    title_kept, body_kept = kept
    main = bool(title_kept) or where.main_subject(owner)
    # (gain, term, lang, count, passing occurrences, topical?, a core term used twice?)
    evidence: list[tuple[float, str, str, int, int, bool, bool]] = []
    groups_met: set[int] = set()
    excluded: list[str] = []
    near_parts: dict[int, tuple[dict[int, list[Occurrence]], dict[int, list[Occurrence]]]] = {}
    score = 0.0
    for index in sorted(indexes):
        term = taxonomy.terms[index]
        in_title = len(title[1].get(index, ()))
        in_text = len(body_hits.get(index, ()))
        if term.role == "weighted":
            in_title = len(title_kept.get(index, ()))
            spans = body_kept.get(index, ())
            if not in_title + len(spans):
                continue
            factors = [where.factor(where.words[o], owner, main) for o, _ in spans]
            passing = sum(1 for f in factors if f == settings.passing_weight)
            counted = min(sum(factors) + settings.title_weight * in_title, settings.max_count)
            gain = term.weight * counted
            score += gain
            topical = bool(in_title) or passing < len(spans)
            # A topic-specific term used topically twice is two pieces of evidence (density).
            repeated = term.weight >= settings.core_weight and in_title + len(spans) - passing > 1
            evidence.append(
                (gain, term.text, term.lang, in_title + len(spans), passing, topical, repeated)
            )
        elif term.role == "all":
            groups_met.add(term.slot)
            evidence.append((0.0, term.text, term.lang, in_title + in_text, 0, False, False))
        elif term.role == "none":
            excluded.append(term.text)
        elif term.role == "mask":
            continue  # a `not` phrase: it only hides the topic's terms inside it
        else:  # near: collect word numbers per part, scored below
            t_parts, b_parts = near_parts.setdefault(term.slot, ({}, {}))
            t_words = (title[0][o] for o, _ in title[1].get(index, ()))
            b_words = (where.words[o] for o, _ in body_hits.get(index, ()))
            t_parts.setdefault(term.part, []).extend((w, -1 - w) for w in t_words)
            b_parts.setdefault(term.part, []).extend((w, -1 - w) for w in b_words)
    for slot, (t_parts, b_parts) in near_parts.items():
        rule = topic.near[slot]
        for part, kinds in enumerate(rule.facets):
            for kind in kinds:
                seen_title, seen_text = facet_places.get(kind, ([], []))
                t_parts.setdefault(part, []).extend(seen_title)
                b_parts.setdefault(part, []).extend(seen_text)
        limit = settings.lead_words if rule.lead_only else None
        t_count = len(_near_anchors(rule, {k: v for k, v in t_parts.items() if v}, None))
        anchors = _near_anchors(rule, {k: v for k, v in b_parts.items() if v}, limit)
        if t_count + len(anchors):
            factors = [where.factor(w, owner, main) for w in anchors]
            passing = sum(1 for f in factors if f == settings.passing_weight)
            counted = min(sum(factors) + settings.title_weight * t_count, settings.max_count)
            score += rule.weight * counted
            topical = bool(t_count) or passing < len(anchors)
            evidence.append(
                (
                    rule.weight * counted,
                    rule.label,
                    rule.lang,
                    t_count + len(anchors),
                    passing,
                    topical,
                    False,
                )
            )
    if not evidence and not excluded:
        return None
    evidence.sort(key=lambda e: (-e[0], e[1], e[2]))
    score = round(score, 3)
    # Evidence needs `min_terms` distinct terms used topically; a match in the title counts
    # as one more, because a title names what the article is about (one term repeated in
    # the text is not, and neither are passing mentions).
    distinct = sum(1 + e[6] for e in evidence if e[0] > 0 and e[5]) + (1 if title_kept else 0)
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
        evidence=tuple((e[1], e[2], e[3]) for e in evidence),
        contributions=tuple(round(e[0], 3) for e in evidence),
        status=status,
        excluded_by=tuple(sorted(set(excluded))),
        passing=tuple(e[4] for e in evidence),
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
        passing = s.passing or (0,) * len(s.evidence)
        matched = ", ".join(
            f"'{term}' ×{count} ({lang}, +{_fmt(gain)}{f', {p} passing' if p else ''})"
            for (term, lang, count), gain, p in zip(
                s.evidence, s.contributions, passing, strict=True
            )
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
