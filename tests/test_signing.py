"""A worker computes a text's signature, story features and tags once (issue 14)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.config import DedupeConfig, PollConfig
from monitor.dedupe.follow import follow_marker
from monitor.dedupe.near import sign_text, signature_to_bytes
from monitor.dedupe.story import extract_features, features_to_json
from monitor.fetch import Fetcher, make_client
from monitor.models import HttpConfig, Source
from monitor.pipeline import Poller, init_worker, signing
from monitor.pipeline.index import DedupeIndex
from monitor.store import Store
from monitor.tag import tag_article
from tests.servers import LocalServer
from tests.test_pipeline import NO_CORPUS, PAGES, START, TAXONOMY, Clock, rss

TEXT = (
    "MOSCOW, Feb 5 (VNA) - ASEAN Secretary-General Lim Jock Hoi met Russian Foreign Minister "
    "Sergey Lavrov in Moscow on February 4, 2020, to discuss the ASEAN-Russia Strategic "
    "Partnership and the 30th anniversary of relations in 2021."
)


@pytest.mark.parametrize(
    "published",
    [None, datetime(2020, 2, 5, 9, 0, tzinfo=UTC), datetime(2019, 12, 31, 23, 0, tzinfo=UTC)],
    ids=["undated", "dated", "another-year"],
)
def test_memoised_features_equal_features_computed_afresh(published: datetime | None) -> None:
    signing.use_taxonomy(TAXONOMY)
    signing.features("Lim Jock Hoi in Moscow", TEXT, None, "en")  # the memo holds the text
    kept = signing.features("Lim Jock Hoi in Moscow", TEXT, published, "en")
    afresh = extract_features("Lim Jock Hoi in Moscow", TEXT, published, "en")
    assert features_to_json(kept) == features_to_json(afresh)
    assert kept == afresh
    signature, shingles = sign_text(TEXT)
    assert signing.signature(TEXT) == (signature_to_bytes(signature), shingles)
    assert signing.tags("Lim Jock Hoi in Moscow", TEXT, "en") == tag_article(
        TAXONOMY, title="Lim Jock Hoi in Moscow", text=TEXT, language="en"
    )


def test_kept_features_json_equals_json_written_afresh_for_every_date() -> None:
    """The JSON kept per text takes each item's date: what `features_to_json` writes."""
    signing.use_taxonomy(TAXONOMY)
    dates = [
        None,
        datetime(2020, 2, 5, 9, 0, tzinfo=UTC),
        datetime(2019, 12, 31, 23, 0, tzinfo=UTC),
        datetime(2021, 6, 1, 12, 30, 15, 250, tzinfo=UTC),
        None,
    ]
    for title, text in [("Lim Jock Hoi in Moscow", TEXT), ("", ""), ('"quoted" \\', "x")]:
        for published in dates:
            afresh = features_to_json(extract_features(title, text, published, "en"))
            assert signing.features_json(title, text, published, "en") == afresh
    assert signing._json_parts.cache_info().hits >= 2  # later dates reused the kept JSON


def test_a_known_text_skips_the_signature_but_still_records_the_item(
    http_server: LocalServer, http_config: HttpConfig, tmp_path: Path
) -> None:
    """Two URLs serving the same page: its signature and features are computed once, both
    items are stored (the second a duplicate by text hash) with the very same signature, and
    the second takes the first's story, undecided, storing no features of its own."""
    page = (PAGES / "chron.com.esper-vietnam.html").read_bytes()
    links = [http_server.add(f"/same/{n}.html", page, content_type="text/html") for n in (1, 2)]
    feed = rss(
        [
            {"title": "Esper in Vietnam", "link": links[0], "guid": "one"},
            {"title": "Esper in Vietnam", "link": links[1], "guid": "two"},
        ]
    )
    source = Source("same", http_server.add("/same.xml", feed))
    clock = Clock()
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}", now=START)
    store.sync_sources([source], clock())
    index = DedupeIndex.load(store, NO_CORPUS, DedupeConfig(), clock())

    async def go() -> None:
        # One worker thread: its memo is the one this test reads.
        with ThreadPoolExecutor(1, initializer=init_worker, initargs=(TAXONOMY,)) as pool:
            async with make_client(http_config) as client:
                poller = Poller(
                    store, Fetcher(client, http_config), pool, PollConfig(), index=index,
                    clock=clock,
                )  # fmt: skip
                [outcome] = await poller.poll_all([source])
                assert outcome.outcome == "ok"

    asyncio.run(go())
    stored = list(store.signatures_since(START))
    statuses = sorted(i.status for i in store.list_items())
    stories = {i.url: i.story_id for i in store.list_items()}
    store.close()
    assert statuses == ["duplicate", "new"]  # both recorded
    # The second takes the first's story without a story decision or features of its own.
    assert stories[stored[1].url] == stories[stored[0].url] is not None
    assert stored[1].features == follow_marker(stored[0].url)
    assert index.stories.story_of(stored[1].url) is None
    assert signing._undated_features.cache_info().misses == 1  # features computed once
    assert signing.signature.cache_info().misses == 1  # signed once ...
    assert signing.signature.cache_info().hits == 1  # ... and the second time remembered
    assert len(stored) == 2
    assert stored[0].signature == stored[1].signature
    assert stored[0].shingles == stored[1].shingles
