"""Rule-file text (TOML) -> validated, compiled Taxonomy; every problem is reported. No I/O."""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import replace
from typing import Any

from monitor.errors import ConfigError, Problem
from monitor.tagging.engine import (
    ANY_LANGUAGE,
    FACET_KINDS,
    Near,
    Settings,
    Taxonomy,
    Term,
    Topic,
    build_automaton,
)
from monitor.tagging.morphology import term_forms
from monitor.tagging.normalise import TermPattern, compile_term, normalise_text

_TOP_KEYS = {"settings", "sets", "topics", "facets"}
_SETTINGS_KEYS = {
    "languages",
    "threshold",
    "weight",
    "title_weight",
    "max_count",
    "max_suffix",
    "min_terms",
    "lead_words",
    "lead_weight",
    "context_words",
    "list_words",
    "list_topics",
    "passing_weight",
    "core_weight",
    "list_separators",
}
_WHOLE_SETTINGS = {"max_count", "max_suffix", "min_terms", "lead_words", "context_words"}
_WHOLE_SETTINGS |= {"list_words", "list_topics", "list_separators"}
_SHORT_MAX = 20  # a chip label must fit a phone screen three times over
_TOPIC_KEYS = {"label", "short", "threshold", "weight", "terms", "all", "none", "not", "near"}
_NEAR_KEYS = {"terms", "within", "weight", "lang", "scope"}
_SCOPES = ("text", "lead")  # where a near rule's first part counts: anywhere, or title + lead
_FACET_NAMES = {"countries": "country", "organisations": "organisation", "officials": "official"}
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_LANG = re.compile(r"^[a-z]{2,3}$")
_HEADER = re.compile(r"^\s*\[\s*topics\s*\.\s*(\"[^\"]*\"|[A-Za-z0-9_-]+)\s*\]", re.MULTILINE)


class _Collector:
    """Gathers problems and compiled terms while walking the file."""

    def __init__(self, file: str, settings: Settings) -> None:
        self.file = file
        self.settings = settings
        self.problems: list[Problem] = []
        self.terms: list[Term] = []
        self.sets: dict[str, list[str]] = {}

    def alternatives(self, group: Any, key: str) -> list[tuple[str, Any]]:
        """A group item -> (key, term) pairs; a list gives alternatives, "@name" a named set."""
        items = group if isinstance(group, list) else [group]
        out: list[tuple[str, Any]] = []
        for j, term in enumerate(items):
            item = f"{key}[{j}]" if isinstance(group, list) else key
            if isinstance(term, str) and term.startswith("@"):
                if term[1:] not in self.sets:
                    self.problem(item, f"unknown set {term!r} (define it under [sets])")
                out.extend((item, t) for t in self.sets.get(term[1:], []))
            else:
                out.append((item, term))
        return out

    def problem(self, key: str, reason: str) -> None:
        self.problems.append(Problem(self.file, key, reason))

    def number(self, value: Any, key: str, *, positive: bool = True) -> float | None:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            self.problem(key, f"must be a number, not {value!r}")
            return None
        if positive and value <= 0:
            self.problem(key, f"must be greater than 0, not {value!r}")
            return None
        return float(value)

    def pattern(self, raw: Any, key: str, lang: str = ANY_LANGUAGE) -> TermPattern | None:
        if not isinstance(raw, str):
            self.problem(key, f"a term must be a string, not {raw!r}")
            return None
        compiled = compile_term(raw, max_suffix=self.settings.max_suffix, lang=lang)
        if isinstance(compiled, str):
            self.problem(key, compiled)
            return None
        return compiled

    def forms(self, raw: str, lang: str) -> list[TermPattern]:
        """The affixed forms of a valid term that its language's rule adds (morphology.py),
        compiled; a form's ending is supplied by a rule, so the term as written wins a tie."""
        max_suffix = self.settings.max_suffix
        compiled = (
            compile_term(form, max_suffix=max_suffix, lang=lang)
            for form in term_forms(normalise_text(raw), lang)
        )
        return [replace(c, inflected=True) for c in compiled if isinstance(c, TermPattern)]

    def language(self, lang: Any, key: str) -> bool:
        if lang == ANY_LANGUAGE or lang in self.settings.languages:
            return True
        known = ", ".join([*self.settings.languages, ANY_LANGUAGE])
        self.problem(key, f"unknown language {lang!r} (known: {known})")
        return False


def parse_taxonomy(text: str, *, file: str) -> Taxonomy:
    """Parse and compile a topics/facets rule file.

    Raises:
        ConfigError: listing every problem, each with the file, the key (for example
            `topics.diplomacy.terms.ru[3]`) and the reason.
    """
    duplicates = _duplicate_topics(text, file)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([*duplicates, Problem(file, "(file)", f"not valid TOML: {exc}")]) from exc
    settings, problems = _settings(data.get("settings", {}), file)
    out = _Collector(file, settings)
    out.problems.extend(problems)
    for key in data:
        if key not in _TOP_KEYS:
            out.problem(key, f"unknown key (expected one of {', '.join(sorted(_TOP_KEYS))})")
    out.sets = _sets(data.get("sets", {}), out)
    topics = _topics(data.get("topics"), out)
    facet_values = _facets(data.get("facets", {}), out)
    if out.problems:
        raise ConfigError(out.problems)
    return Taxonomy(
        settings=settings,
        topics=tuple(topics),
        facet_values=tuple(facet_values),
        terms=tuple(out.terms),
        automaton=build_automaton(out.terms),
        near_facet_kinds=frozenset(
            kind for t in topics for rule in t.near for kinds in rule.facets for kind in kinds
        ),
    )


def _duplicate_topics(text: str, file: str) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for match in _HEADER.finditer(text):
        topic_id = match.group(1).strip('"')
        if topic_id in seen:
            line = text.count("\n", 0, match.start()) + 1
            problems.append(Problem(file, f"topics.{topic_id}", f"duplicate id (line {line})"))
        seen.add(topic_id)
    return problems


def _settings(raw: Any, file: str) -> tuple[Settings, list[Problem]]:
    out = _Collector(file, Settings())
    if not isinstance(raw, dict):
        out.problem("settings", "must be a table")
        return Settings(), out.problems
    values: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"settings.{key}"
        if key not in _SETTINGS_KEYS:
            out.problem(where, f"unknown key (expected one of {', '.join(sorted(_SETTINGS_KEYS))})")
        elif key == "languages":
            ok = (
                isinstance(value, list)
                and value
                and all(isinstance(v, str) and _LANG.match(v) for v in value)
            )
            if ok:
                values[key] = tuple(value)
            else:
                out.problem(where, 'must be a non-empty list of language codes like "en"')
        elif key == "passing_weight":
            number = out.number(value, where, positive=False)
            if number is not None and not 0 <= number <= 1:
                out.problem(where, f"must be between 0 and 1, not {value!r}")
            elif number is not None:
                values[key] = number
        elif key in _WHOLE_SETTINGS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                out.problem(where, f"must be a whole number of at least 1, not {value!r}")
            else:
                values[key] = value
        else:
            number = out.number(value, where)
            if number is not None:
                values[key] = number
    return Settings(**values), out.problems


def _topics(raw: Any, out: _Collector) -> list[Topic]:
    if not isinstance(raw, dict) or not raw:
        out.problem("topics", "must be a table with at least one topic")
        return []
    topics: list[Topic] = []
    for topic_id, body in raw.items():
        where = f"topics.{topic_id}"
        if not _ID.match(topic_id):
            out.problem(where, "a topic id is lowercase letters, digits and single hyphens")
        if not isinstance(body, dict):
            out.problem(where, "must be a table")
            continue
        topic = _topic(topic_id, body, len(topics), out)
        if topic is not None:
            topics.append(topic)
    return topics


def _topic(topic_id: str, body: dict[str, Any], owner: int, out: _Collector) -> Topic | None:
    where = f"topics.{topic_id}"
    for key in body:
        if key not in _TOPIC_KEYS:
            out.problem(
                f"{where}.{key}", f"unknown key (expected one of {', '.join(sorted(_TOPIC_KEYS))})"
            )
    threshold = out.number(body.get("threshold", out.settings.threshold), f"{where}.threshold")
    default = out.number(body.get("weight", out.settings.weight), f"{where}.weight")
    label = body.get("label", topic_id)
    if not isinstance(label, str):
        out.problem(f"{where}.label", "must be a string")
    short = body.get("short", "")
    if not isinstance(short, str) or len(short.strip()) > _SHORT_MAX:
        out.problem(f"{where}.short", f"must be a string of at most {_SHORT_MAX} characters")
        short = ""
    limit = threshold if threshold is not None else math.inf
    weighted = _weighted_terms(body.get("terms"), where, owner, default or 1.0, limit, out)
    groups = _groups(body.get("all", []), f"{where}.all", owner, "all", out)
    _groups(body.get("none", []), f"{where}.none", owner, "none", out)
    _groups(body.get("not", []), f"{where}.not", owner, "mask", out)
    near = _near_rules(body.get("near", []), f"{where}.near", owner, default or 1.0, limit, out)
    if weighted == 0 and not near:
        out.problem(f"{where}.terms", "a topic needs at least one weighted term")
    if threshold is None:
        return None
    return Topic(topic_id, str(label), threshold, groups, tuple(near), short.strip())


def _term_entry(entry: Any, key: str, default: float) -> tuple[Any, Any]:
    if isinstance(entry, dict):
        return entry.get("term"), entry.get("weight", default)
    return entry, default


def _weighted_terms(
    raw: Any, where: str, owner: int, default: float, limit: float, out: _Collector
) -> int:
    if raw is None:
        return 0
    if not isinstance(raw, dict):
        out.problem(f"{where}.terms", "must be a table of language = [terms]")
        return 0
    count = 0
    for lang, entries in raw.items():
        key = f"{where}.terms.{lang}"
        if not out.language(lang, key):
            continue
        if not isinstance(entries, list):
            out.problem(key, "must be a list of terms")
            continue
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            item = f"{key}[{i}]"
            if isinstance(entry, dict):
                extra = set(entry) - {"term", "weight"}
                if extra:
                    out.problem(item, f"unknown key {sorted(extra)[0]!r} (expected term, weight)")
            raw_term, raw_weight = _term_entry(entry, item, default)
            weight = out.number(raw_weight, f"{item}.weight" if isinstance(entry, dict) else item)
            pattern = out.pattern(raw_term, item, lang)
            if weight is not None and weight >= limit:
                out.problem(
                    item,
                    f"weight {weight:g} must be below the threshold {limit:g}: "
                    "one mention alone must not tag",
                )
                continue
            if pattern is None or weight is None:
                continue
            if str(raw_term) in seen:
                out.problem(item, f"duplicate term {raw_term!r}")
                continue
            seen.add(str(raw_term))
            base = len(out.terms)
            out.terms.append(Term(str(raw_term), lang, pattern, "weighted", owner, weight=weight))
            for form in out.forms(str(raw_term), lang):
                out.terms.append(
                    Term(str(raw_term), lang, form, "weighted", owner, weight=weight, base=base)
                )
            count += 1
    return count


def _groups(raw: Any, key: str, owner: int, role: Any, out: _Collector) -> int:
    """`all` / `none` / `not`: a list whose items are a term or a list of alternative terms."""
    if not isinstance(raw, list):
        out.problem(key, "must be a list of terms or of lists of alternative terms")
        return 0
    for slot, group in enumerate(raw):
        alternatives = out.alternatives(group, f"{key}[{slot}]")
        if not alternatives:
            out.problem(f"{key}[{slot}]", "empty group")
        for item, term in alternatives:
            pattern = out.pattern(term, item)
            if pattern is not None:
                out.terms.append(Term(term, ANY_LANGUAGE, pattern, role, owner, slot=slot))
    return len(raw)


def _near_rules(
    raw: Any, key: str, owner: int, default: float, limit: float, out: _Collector
) -> list[Near]:
    if not isinstance(raw, list):
        out.problem(key, "must be a list of { terms = [...], within = N } tables")
        return []
    rules: list[Near] = []
    for slot, rule in enumerate(raw):
        where = f"{key}[{slot}]"
        if not isinstance(rule, dict):
            out.problem(where, "must be a table { terms = [...], within = N, weight = W }")
            continue
        for extra in sorted(set(rule) - _NEAR_KEYS):
            out.problem(
                f"{where}.{extra}", "unknown key (expected terms, within, weight, lang, scope)"
            )
        scope = rule.get("scope", "text")
        if scope not in _SCOPES:
            out.problem(f"{where}.scope", f"must be one of {', '.join(_SCOPES)}, not {scope!r}")
        lang = rule.get("lang", ANY_LANGUAGE)
        lang_ok = out.language(lang, f"{where}.lang")
        within = rule.get("within")
        if isinstance(within, bool) or not isinstance(within, int) or within < 1:
            out.problem(f"{where}.within", f"must be a whole number of words >= 1, not {within!r}")
        weight = out.number(rule.get("weight", default), f"{where}.weight")
        if weight is not None and weight >= limit:
            out.problem(
                f"{where}.weight", f"weight {weight:g} must be below the threshold {limit:g}"
            )
        parts = rule.get("terms")
        if not isinstance(parts, list) or len(parts) < 2:
            out.problem(f"{where}.terms", "must list at least two terms (or lists of alternatives)")
            continue
        before = len(out.problems)
        shown = []
        facets: list[tuple[str, ...]] = []
        specs: dict[str, list[int]] = {}
        for part, group in enumerate(parts):
            items = group if isinstance(group, list) else [group]
            kinds = tuple(str(t)[1:] for t in items if isinstance(t, str) and t.startswith("$"))
            for kind in kinds:
                if kind not in FACET_KINDS:
                    out.problem(
                        f"{where}.terms[{part}]",
                        f"unknown facet ${kind} (expected one of "
                        f"{', '.join('$' + k for k in FACET_KINDS)})",
                    )
            if kinds and part == 0:
                out.problem(f"{where}.terms[0]", "the first part must be terms, not a facet")
            facets.append(kinds)
            if part:
                specs.setdefault(repr(items), []).append(part)
            terms = [t for t in items if not (isinstance(t, str) and t.startswith("$"))]
            group = terms if isinstance(group, list) else (terms[0] if terms else [])
            alternatives = out.alternatives(group, f"{where}.terms[{part}]") if terms else []
            first = str(items[0])
            more = len(items) > 1 or first.startswith("@")  # "@set": one of the set's terms
            name = _FACET_NAMES.get(first[1:], first) if first.startswith("$") else first
            shown.append(name.removeprefix("@") + ("…" if more else ""))
            for item, term in alternatives:
                pattern = out.pattern(term, item, lang)
                if pattern is not None:
                    out.terms.append(
                        Term(term, lang, pattern, "near", owner, slot=len(rules), part=part)
                    )
        if (
            len(out.problems) > before
            or not lang_ok
            or weight is None
            or not isinstance(within, int)
        ):
            continue
        # Short enough for a digest's tag chips: the first alternative of each part.
        where_ = "title or lead, " if scope == "lead" else ""
        label = f"{' ~ '.join(shown)} ({where_}within {within} words)"
        repeats = tuple(tuple(p) for p in specs.values())
        facet_parts = tuple(facets) if any(facets) else ()
        rules.append(
            Near(label, lang, len(parts), within, weight, facet_parts, repeats, scope == "lead")
        )
    return rules


def _sets(raw: Any, out: _Collector) -> dict[str, list[str]]:
    """`[sets]`: named lists of terms, used as "@name" inside `near`, `all` and `none`."""
    if not isinstance(raw, dict):
        out.problem("sets", "must be a table of name = [terms]")
        return {}
    sets: dict[str, list[str]] = {}
    for name, terms in raw.items():
        if not isinstance(terms, list) or not terms:
            out.problem(f"sets.{name}", "must be a non-empty list of terms")
            continue
        good = [t for t in terms if isinstance(t, str)]
        for i, term in enumerate(terms):
            if not isinstance(term, str):
                out.problem(f"sets.{name}[{i}]", f"a term must be a string, not {term!r}")
        sets[name] = good
    return sets


def _facets(raw: Any, out: _Collector) -> list[tuple[str, str]]:
    values: list[tuple[str, str]] = []
    if not isinstance(raw, dict):
        out.problem("facets", "must be a table of facet kinds")
        return values
    for kind, entries in raw.items():
        if kind not in FACET_KINDS:
            out.problem(
                f"facets.{kind}", f"unknown facet (expected one of {', '.join(FACET_KINDS)})"
            )
            continue
        if not isinstance(entries, dict):
            out.problem(f"facets.{kind}", "must be a table of value = { language = [aliases] }")
            continue
        for value, aliases in entries.items():
            where = f"facets.{kind}.{value}"
            if not isinstance(aliases, dict) or not aliases:
                out.problem(where, "must be a table of language = [aliases]")
                continue
            owner = len(values)
            values.append((kind, value))
            for lang, names in aliases.items():
                key = f"{where}.{lang}"
                if not out.language(lang, key):
                    continue
                if not isinstance(names, list) or not names:
                    out.problem(key, "must be a non-empty list of aliases")
                    continue
                for i, name in enumerate(names):
                    pattern = out.pattern(name, f"{key}[{i}]", lang)
                    if pattern is not None:
                        out.terms.append(Term(name, lang, pattern, "facet", owner))
    return values
