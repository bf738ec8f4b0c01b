"""Near-duplicate layer: reprints, teasers, unrelated texts, same-source rule, persistence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.dedupe.near import (
    CONTAINMENT_THRESHOLD,
    JACCARD_THRESHOLD,
    NearIndex,
    shingle,
    sign_text,
    signature_from_bytes,
    signature_to_bytes,
)
from monitor.dedupe.seeds import Seed, parse_seed

CORPUS = Path(__file__).resolve().parents[1] / "config" / "corpus"
SEEDS = [parse_seed(p.name, p.read_text(encoding="utf-8")) for p in sorted(CORPUS.glob("*.txt"))]
IDS = [s.name[:3] for s in SEEDS]
T0 = datetime(2024, 8, 1, tzinfo=UTC)

HEADER = (
    "Home | World | Asia-Pacific\nSubscribe to our newsletter\nShare: Facebook Twitter Telegram"
)
FOOTER = "Read more: Russia and Vietnam sign energy deal\n© 2024 News Agency. All rights reserved."


def _seed_index(*, skip: str | None = None) -> NearIndex:
    index = NearIndex()
    for seed in SEEDS:
        if seed.name == skip:
            continue
        sig, size = sign_text(f"{seed.title}\n{seed.text}")
        index.add(seed.name, sig, kind="seed", ref=seed.name, source=None, at=T0, size=size)
    return index


@pytest.mark.parametrize("seed", SEEDS, ids=IDS)
def test_a_reprint_with_different_boilerplate_is_known(seed: Seed) -> None:
    reprint = f"{HEADER}\n{seed.title}\n\n{seed.text}\n{FOOTER}"
    sig, size = sign_text(reprint)
    match = _seed_index().query(sig, source="reprinter", size=size)
    assert match is not None
    assert (match.kind, match.ref, match.method) == ("seed", seed.name, "minhash-jaccard")
    assert match.similarity >= JACCARD_THRESHOLD


@pytest.mark.parametrize("seed", SEEDS, ids=IDS)
def test_the_raw_scraped_file_matches_its_cleaned_seed(seed: Seed) -> None:
    sig, size = sign_text((CORPUS / seed.name).read_text(encoding="utf-8"))
    match = _seed_index().query(sig, source="anywhere", size=size)
    assert match is not None
    assert match.ref == seed.name


@pytest.mark.parametrize("seed", SEEDS, ids=IDS)
def test_a_teaser_of_the_first_quarter_is_found_by_containment(seed: Seed) -> None:
    words = seed.text.split()
    teaser = " ".join(words[: len(words) // 4]) + " … Read more"
    sig, size = sign_text(teaser)
    match = _seed_index().query(sig, source="aggregator", size=size)
    assert match is not None
    assert (match.ref, match.method) == (seed.name, "minhash-containment")
    assert match.similarity >= CONTAINMENT_THRESHOLD
    assert "containment" in match.explain()


@pytest.mark.parametrize("seed", SEEDS, ids=IDS)
def test_an_unrelated_real_text_is_not_a_near_duplicate(seed: Seed) -> None:
    sig, size = sign_text(f"{seed.title}\n{seed.text}")
    assert _seed_index(skip=seed.name).query(sig, source="x", size=size) is None


def test_within_one_source_a_near_copy_does_not_count_but_across_sources_it_does() -> None:
    seed = SEEDS[2]
    original = f"{seed.title}\n{seed.text}"
    copy = original.replace("Moscow (VNA)", "MOSCOW, Feb 3 (VNA)") + "\nTags: ASEAN, Russia"
    index = NearIndex()
    sig, size = sign_text(original)
    index.add("item:1", sig, kind="item", ref="https://a.example/1", source="VNA", at=T0, size=size)
    sig2, size2 = sign_text(copy)
    assert index.query(sig2, source="VNA", size=size2) is None
    match = index.query(sig2, source="VietnamPlus", size=size2)
    assert match is not None
    assert (match.kind, match.ref) == ("item", "https://a.example/1")


def test_a_seed_match_wins_over_an_item_match() -> None:
    seed = SEEDS[0]
    text = f"{seed.title}\n{seed.text}"
    index = NearIndex()
    sig, size = sign_text(text)
    index.add(
        "item:9", sig, kind="item", ref="https://b.example/9", source="TASS", at=T0, size=size
    )
    index.add(seed.name, sig, kind="seed", ref=seed.name, source=None, at=T0, size=size)
    match = index.query(sig, source="other", size=size)
    assert match is not None
    assert match.kind == "seed"


def test_signatures_survive_a_bytes_round_trip() -> None:
    sig, size = sign_text(SEEDS[3].text)
    data = signature_to_bytes(sig)
    back = signature_from_bytes(data)
    assert len(data) == 8 + 4 * 128
    assert list(back.hashvalues) == list(sig.hashvalues)
    assert back.jaccard(sig) == 1.0
    index = NearIndex()
    index.add("k", back, kind="item", ref="u", source="s", at=T0, size=size)
    assert index.query(sig, source="t", size=size) is not None


@pytest.mark.parametrize(
    "data",
    [b"", b"\x02\x01\x80\x00\x01\x00\x00\x00" + bytes(512), b"\x01\x01\x80\x00\x01\x00\x00\x00"],
)
def test_bytes_the_module_did_not_write_are_rejected(data: bytes) -> None:
    with pytest.raises(ValueError, match="signature"):
        signature_from_bytes(data)


def test_the_retention_window_bounds_the_index_and_keeps_seeds() -> None:
    index = _seed_index()
    texts = [f"{s.title}\n{s.text}" for s in SEEDS]
    for day in range(300):
        # Distinct texts: a seed with a day-specific sentence woven in every few words.
        base = texts[day % 5].split()
        words = [w if i % 4 else f"{w} d{day}x{i}" for i, w in enumerate(base)]
        sig, size = sign_text(" ".join(words))
        at = T0 + timedelta(days=day)
        index.add(f"i{day}", sig, kind="item", ref=f"u{day}", source="s", at=at, size=size)
    assert len(index) == 305
    evicted = index.evict_before(T0 + timedelta(days=270))
    assert evicted == 270
    assert len(index) == 35
    sig, size = sign_text(texts[1])
    match = index.query(sig, source="x", size=size)
    assert match is not None
    assert match.kind == "seed"
    old = " ".join(w if i % 4 else f"{w} d0x{i}" for i, w in enumerate(texts[0].split()))
    sig, size = sign_text(old)
    found = index.query(sig, source="x", size=size)
    assert found is None or found.ref != "u0"


def test_texts_without_spaces_are_shingled_by_characters() -> None:
    shingles = shingle("东盟秘书长林玉辉访问莫斯科并与拉夫罗夫举行会谈")
    assert "东 盟 秘".encode() in shingles
    assert len(shingles) > 15


def test_too_short_texts_are_not_judged() -> None:
    sig, size = sign_text("ASEAN and Russia")
    index = _seed_index()
    index.add("short", sig, kind="item", ref="u", source="s", at=T0, size=size)
    assert len(index) == 5
    assert index.query(sig, source="t", size=size) is None
