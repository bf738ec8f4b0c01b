"""Story trials (cluster mode): a story decided ahead of the decision lock and then kept,
renumbered or taken back gives exactly the decisions of one index deciding in log order, with
the second step merging whole stories and exact duplicates following their originals."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.dedupe.story import StoryFeatures, StoryIndex, StoryMatch, StoryMove, extract_features

EVENTS = Path(__file__).resolve().parent / "data" / "stories" / "recurring.jsonl"
START = datetime(2026, 1, 1, tzinfo=UTC)


def _articles() -> list[tuple[str, StoryFeatures]]:
    """The labelled reports of the tuning split, in a fixed shuffled arrival order."""
    with EVENTS.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    out = []
    for r in rows:
        if r["split"] != "train":
            continue
        when = datetime.fromisoformat(r["published_at"]).replace(hour=12, tzinfo=UTC)
        out.append((r["id"], extract_features(r["title"], r["text"], when, r["language"])))
    random.Random(15).shuffle(out)
    return out


ARTICLES = _articles()


def _partition(index: StoryIndex) -> dict[str, int | None]:
    return {key: index.story_of(key) for key, _ in ARTICLES}


def _reference() -> tuple[list[StoryMatch], list[list[StoryMove]], StoryIndex]:
    index = StoryIndex()
    matches, moves = [], []
    for n, (key, features) in enumerate(ARTICLES):
        matches.append(index.assign(key, features, START + timedelta(minutes=n)))
        moves.append(index.take_moves())
    return matches, moves, index


def test_a_trial_taken_back_leaves_the_index_deciding_as_if_it_never_happened() -> None:
    """Before each article, another one is tried and taken back (a late arrival, which
    decides later articles again, included): every decision and move is the reference's."""
    matches, moves, reference = _reference()
    index = StoryIndex()
    rng = random.Random(3)
    undone_with_moves = 0
    for n, (key, features) in enumerate(ARTICLES):
        other_key, other = ARTICLES[rng.randrange(len(ARTICLES))]
        trial = index.begin_trial()
        index.assign(f"trial-{n}-{other_key}", other, START + timedelta(minutes=n))
        index.end_trial()
        undone_with_moves += bool(trial.detached)
        index.undo_trial(trial)
        assert index.story_of(f"trial-{n}-{other_key}") is None
        assert index.assign(key, features, START + timedelta(minutes=n)) == matches[n], key
        assert index.take_moves() == moves[n], key
    assert undone_with_moves > 0  # trials that decided earlier articles again were undone
    assert _partition(index) == _partition(reference)
    assert len(index) == len(reference)
    assert _merges(matches, moves) > 0  # the second step merged stories: the test can fail


def _merges(matches: list[StoryMatch], moves: list[list[StoryMove]]) -> int:
    """How many decisions and moves say their story was merged as a whole (`merge`)."""
    said = [m.merged for m in matches] + [m.match.merged for ms in moves for m in ms]
    return sum(bool(x) for x in said)


def test_a_trial_taken_back_puts_the_second_steps_merges_back() -> None:
    """A trial whose decision merges two whole stories (or splits a merged one), taken
    back: the merged ids, the profiles and the next decisions are the reference's."""
    matches, moves, _ = _reference()
    index = StoryIndex()
    undone_merges = 0
    for n, (key, features) in enumerate(ARTICLES):
        at = START + timedelta(minutes=n)
        before = {k: index.story_of(k) for k, _ in ARTICLES[:n]}
        trial = index.begin_trial()
        index.assign(key, features, at)
        index.end_trial()
        undone_merges += bool(trial.merger.saved and _merges([], [index.take_moves()]))
        index.undo_trial(trial)
        assert {k: index.story_of(k) for k, _ in ARTICLES[:n]} == before, key
        assert index.assign(key, features, at) == matches[n], key
        assert index.take_moves() == moves[n], key
    assert undone_merges > 0  # trials that merged stories were taken back


def test_two_deciders_trying_ahead_decide_as_one_index_in_log_order() -> None:
    """A node decides some articles (the rest are another node's, logged with the story
    the reference gave them). It tries each of its own ahead, with some of the other's
    logged articles not seen yet; in the lock it keeps the trial when `trial_holds` (with
    the story ids renumbered) or takes it back and decides again after catching up. Every
    decision and move, and the final stories, are what the node decides when it catches up
    first and decides in the lock (as before trials)."""
    matches, moves, _ = _reference()
    paths = [0, 0, 0]
    for seed in (1, 2, 3, 4, 5):
        ahead, plain = _as_node(matches, moves, seed, trials=True), _as_node(matches, moves, seed)
        assert ahead[0] == plain[0], seed
        assert _partition(ahead[1]) == _partition(plain[1])
        paths = [a + b for a, b in zip(paths, ahead[2], strict=True)]
    kept, undone, renumbered = paths
    assert kept > 0  # every path was taken
    assert undone > 0
    assert renumbered > 0
    assert _merges(matches, moves) > 0  # with the second step merging stories


def _as_node(
    matches: list[StoryMatch], moves: list[list[StoryMove]], seed: int, *, trials: bool = False
) -> tuple[list[tuple[StoryMatch, list[StoryMove]]], StoryIndex, tuple[int, int, int]]:
    rng = random.Random(seed)
    node = StoryIndex()
    pending: list[int] = []  # the other node's articles this node has not seen yet
    decided = []
    kept = undone = renumbered = 0

    def add(n: int) -> None:
        key, features = ARTICLES[n]
        node.add(key, features, START + timedelta(minutes=n), story_id=matches[n].story_id)

    for n, (key, features) in enumerate(ARTICLES):
        at = START + timedelta(minutes=n)
        if not moves[n] and rng.random() < 0.5:
            pending.append(n)  # the other node's (one with moves would have us reload)
            continue
        seen = rng.randint(0, len(pending))
        for m in pending[:seen]:
            add(m)
        since, pending = pending[seen:], []
        if not trials:
            for m in since:
                add(m)
            decided.append((node.assign(key, features, at), node.take_moves()))
            continue
        trial = node.begin_trial()
        match = node.assign(key, features, at)
        node.end_trial()
        others = [(ARTICLES[m][1], matches[m].story_id) for m in since]
        top = max((s for _, s in others), default=-1)
        renamed = (
            node.renumber_trial(trial, max(trial.next_id, top + 1))
            if node.trial_holds(trial, others)
            else None
        )
        if renamed is None:
            node.undo_trial(trial)
            for m in since:
                add(m)
            match = node.assign(key, features, at)
            undone += 1
        else:
            if match.story_id in renamed:
                match = StoryMatch(**{**_fields(match), "story_id": renamed[match.story_id]})
                renumbered += 1
            for m in since:
                add(m)
            kept += 1
        decided.append((match, node.take_moves()))
    for m in pending:
        add(m)
    return decided, node, (kept, undone, renumbered)


def _fields(match: StoryMatch) -> dict[str, object]:
    return {name: getattr(match, name) for name in match.__dataclass_fields__}


def test_an_article_sharing_no_word_or_story_with_the_trial_lets_it_hold() -> None:
    index = StoryIndex()
    found = dict(ARTICLES)
    (k1, f1), (k2, f2) = [(k, found[k]) for k in ("asean-india-summit-5", "asean-india-summit-8")]
    index.assign(k1, f1, START)
    trial = index.begin_trial()
    index.assign(k2, f2, START)
    index.end_trial()
    story = index.story_of(k1)
    assert story is not None
    assert index.story_of(k2) == story  # one event: the trial judged the first's story
    # The trial's own article, logged by another node: shares its words, cannot hold.
    assert not index.trial_holds(trial, [(f2, 99)])
    # An article in a story the trial judged cannot hold either.
    assert not index.trial_holds(trial, [(_unrelated(), story)])
    assert index.trial_holds(trial, [(_unrelated(), 99)])
    assert index.trial_holds(trial, [])


def _unrelated() -> StoryFeatures:
    return extract_features(
        "Zyx qwv plorth", "Zyx qwv plorth vembly. Klaxo drumbit.", START - timedelta(days=900), "en"
    )


def test_exact_duplicates_decided_ahead_are_taken_back_or_kept_as_deciding_in_the_lock() -> None:
    """Each report followed by an exact copy (a follower: its original's story, no decision
    of its own), decided by `DedupeIndex`. Before each, another report and a copy of one are
    decided ahead and taken back; then the report and its copy are decided ahead and kept.
    Every decision, move and follower is what deciding without trials gives."""
    from monitor.config import DedupeConfig
    from monitor.dedupe.near import sign_text
    from monitor.models import DuplicateOf
    from monitor.pipeline.index import Decision, DedupeIndex

    texts = {}
    with EVENTS.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip() and (r := json.loads(line))["split"] == "train":
                texts[r["id"]] = r["text"]
    signed = {key: sign_text(texts[key]) for key, _ in ARTICLES}
    found = dict(ARTICLES)

    def decide(index: DedupeIndex, key: str, text: str, original: str | None, n: int) -> Decision:
        """`key` with the report `text`'s text, an exact duplicate of `original` if any."""
        signature, shingles = signed[text]
        return index.decide(
            key=key,
            source=f"source-{key}",
            signature=signature,
            shingles=shingles,
            features=found[text] if original is None else "{not read}",
            exact=("duplicate", DuplicateOf("item", original, 1.0, "text_hash"))
            if original is not None
            else ("new", None),
            at=START + timedelta(minutes=n),
        )

    def run(trials: bool) -> tuple[list[Decision], DedupeIndex, int]:
        index = DedupeIndex(DedupeConfig())
        rng = random.Random(7)
        out: list[Decision] = []
        taken_back = 0
        for n, (key, _) in enumerate(ARTICLES):
            if trials and n:
                other = ARTICLES[rng.randrange(len(ARTICLES))][0]
                copied = ARTICLES[rng.randrange(n)][0]  # indexed already: a follower
                tried = ((f"t{n}-{other}", other, None), (f"t{n}-{copied}#copy", copied, copied))
                for name, text, original in tried:
                    trial = index.stories.begin_trial()
                    decision = decide(index, name, text, original, n)
                    index.stories.end_trial()
                    taken_back += decision.follows is not None
                    index.stories.undo_trial(trial)
                    assert index.followers.original(name) is None
                    assert index.stories.story_of(name) is None
            for name, original in ((key, None), (f"{key}#copy", key)):
                if not trials:
                    out.append(decide(index, name, key, original, n))
                    continue
                trial = index.stories.begin_trial()
                decision = decide(index, name, key, original, n)
                index.stories.end_trial()
                assert index.stories.trial_holds(trial, [])
                assert index.stories.renumber_trial(trial, trial.next_id) == {}
                out.append(decision)
        return out, index, taken_back

    expected, reference, _ = run(False)
    got, index, taken_back = run(True)
    assert got == expected
    assert taken_back > 0
    for key, _ in ARTICLES:
        assert index.followers.original(f"{key}#copy") == key
        assert index.followers.of(key) == reference.followers.of(key) == (f"{key}#copy",)
        assert index.stories.story_of(key) == reference.stories.story_of(key)
    assert len(index.followers) == len(reference.followers) == len(ARTICLES)
    followed_moves = [m for d in expected for m in d.moves if m.key.endswith("#copy")]
    assert followed_moves  # copies moved with their originals
    assert _merges([d.story for d in expected], [list(d.moves) for d in expected]) > 0


def test_an_article_naming_a_profile_name_the_merge_step_looked_up_does_not_let_it_hold() -> None:
    """The second step looked up the neighbours of the stories around a trial by their
    profile names: an article naming one of them (and sharing nothing with the stories the
    trial changed) could make its story a new neighbour, so the trial does not hold."""
    index = StoryIndex()
    checked = 0
    for n, (key, features) in enumerate(ARTICLES):
        trial = index.begin_trial()
        index.assign(key, features, START + timedelta(minutes=n))
        index.end_trial()
        entries = index._entries
        touched = {s for _, s, _ in trial.detached}
        touched |= {entries[r].story_id for r, _, _ in (*trial.inserted, *trial.detached)}
        near = {k for e in entries.values() if e.story_id in touched for k in e.keys}
        for name in sorted(trial.merger.names - near):
            lone = replace(_unrelated(), entities=(name,))
            assert index.trial_holds(trial, [(_unrelated(), 10**6)])
            assert not index.trial_holds(trial, [(lone, 10**6)]), (key, name)
            checked += 1
        index.take_moves()
    assert checked > 0
