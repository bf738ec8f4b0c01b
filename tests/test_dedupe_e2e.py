"""Near-duplicate and story layers wired end to end: seeds, a local feed, restart, retention."""

from __future__ import annotations

import hashlib
import html
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.config import DedupeConfig, PollConfig
from monitor.dedupe.near import sign_text
from monitor.dedupe.seeds import parse_seed
from monitor.models import HttpConfig, Source
from monitor.pipeline.index import DedupeIndex
from monitor.store import Store
from tests.servers import LocalServer
from tests.test_cli import run, write_config
from tests.test_pipeline import PAGES, START, Clock, poll, rss

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "config" / "corpus"
LIM_VISIT = "000_51428d13349f6c0f.txt"  # the Lim Jock Hoi visit announced
MFA_REMARKS = "001_81123ee9e5c26968.txt"  # the same event: Lavrov's remarks at the talks
VNA_TALKS = "002_3b70ce0ad9d51632.txt"  # the same event reported by VNA
VIENTIANE = "003_24ad2f7826d9acd6.txt"  # Lavrov's July 2024 visit, a press release


def seed_page(seed: str, *, title: str, before: list[str], after: list[str]) -> bytes:
    """A publisher's page around a seed's body (its lead kept), with its own boilerplate lines."""
    text = parse_seed(seed, (SEEDS / seed).read_text("utf-8")).text
    body = "".join(f"<p>{html.escape(x)}</p>" for x in text.split("\n\n") if x.strip())
    head = "".join(f"<p>{html.escape(x)}</p>" for x in before)
    tail = "".join(f"<p>{html.escape(x)}</p>" for x in after)
    return (
        f"<html><head><title>{html.escape(title)}</title></head><body>"
        f"<nav><a href='/'>Home</a> | <a href='/world/'>World</a></nav><article>"
        f"<h1>{html.escape(title)}</h1>{head}{body}{tail}</article>"
        "<footer>All rights reserved.</footer></body></html>"
    ).encode()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """The analyst knows the announcement of the Lim Jock Hoi visit and the Vientiane release."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in (LIM_VISIT, VIENTIANE):
        shutil.copy(SEEDS / name, folder / name)
        shutil.copy(SEEDS / f"{name}.toml", folder / f"{name}.toml")  # their dates
    return folder


def feed_with_four_kinds(server: LocalServer) -> None:
    """A reprint of a seed, a rewrite of a seed's event, an AMP twin of it, an unrelated page."""
    server.add(
        "/world/lavrov-vientiane.html",
        seed_page(
            VIENTIANE,
            title="Lavrov heads to Vientiane for ASEAN meetings",
            before=["By our diplomatic correspondent", "Reading time: 4 minutes"],
            after=["Share on Facebook", "Subscribe to the Asia briefing for more."],
        ),
        content_type="text/html",
    )
    talks = seed_page(
        VNA_TALKS,
        title="ASEAN Secretary General, Russian FM hold talks in Moscow",
        before=[],
        after=["Related: ASEAN at 50"],
    )
    server.add("/world/asean-russia-talks.html", talks, content_type="text/html")
    server.add("/amp/world/asean-russia-talks.html", talks, content_type="text/html")
    # Each report carries its real date: a story is one event, so the 2020 talks follow up
    # the 2020 announcement only because they were published the day after it.
    now = format_datetime(datetime.now(UTC) - timedelta(hours=3))
    talks_day = format_datetime(datetime(2020, 2, 3, 12, tzinfo=UTC))
    vientiane_day = format_datetime(datetime(2024, 7, 25, 9, tzinfo=UTC))
    entries = [
        (
            "Lavrov heads to Vientiane for ASEAN meetings",
            "/world/lavrov-vientiane.html",
            vientiane_day,
        ),
        (
            "ASEAN Secretary General, Russian FM hold talks",
            "/world/asean-russia-talks.html",
            talks_day,
        ),
        (
            "ASEAN Secretary General, Russian FM hold talks",
            "/amp/world/asean-russia-talks.html",
            talks_day,
        ),
        ("US helicopter crash in Afghanistan", "/data/pages/aljazeera.com.helicopter.html", now),
    ]
    items = "".join(
        f"<item><title>{t}</title><link>{server.url(p)}</link>"
        f'<guid isPermaLink="false">asia-{n}</guid><pubDate>{when}</pubDate></item>'
        for n, (t, p, when) in enumerate(entries)
    )
    server.add(
        "/feed.xml",
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Asia desk</title>{items}'
        "</channel></rss>".encode(),
    )


def with_corpus(config: Path, corpus: Path) -> Path:
    """Use `corpus`, and take reports of any age as news (they are dated 2020 and 2024)."""
    extra = f'[corpus]\ndir = "{corpus.name}"\n[poll]\nbackfill = "36500d"\n'
    config.write_text(config.read_text("utf-8") + extra, "utf-8")
    return config


def test_a_poll_finds_known_duplicate_follow_up_and_new(
    http_server: LocalServer, tmp_path: Path, corpus: Path
) -> None:
    feed_with_four_kinds(http_server)
    config = with_corpus(
        write_config(tmp_path, [("Asia desk", http_server.url("/feed.xml"))]), corpus
    )
    config.write_text(config.read_text("utf-8") + '[[digests]]\nname = "daily"\n', "utf-8")
    polled = run(config, "poll").stdout
    assert "Asia desk: ok, 2 new, 1 duplicate, 1 known" in polled
    records = {
        r["url"].split("/", 3)[3]: r
        for r in map(json.loads, run(config, "items", "--json").stdout.splitlines())
    }
    reprint = records["world/lavrov-vientiane.html"]
    assert reprint["status"] == "known"
    assert reprint["duplicate_of"]["kind"] == "seed"
    assert reprint["duplicate_of"]["ref"] == VIENTIANE
    assert reprint["duplicate_of"]["method"].startswith("minhash-")
    assert reprint["duplicate_of"]["similarity"] >= 0.5

    rewrite = records["world/asean-russia-talks.html"]
    assert rewrite["status"] == "new"
    assert rewrite["duplicate_of"] is None
    assert rewrite["story"]["seed_refs"] == [LIM_VISIT]  # a follow-up of a known story
    assert rewrite["story"]["sources"] == ["Asia desk"]

    twin = records["amp/world/asean-russia-talks.html"]
    assert twin["status"] == "duplicate"
    assert twin["duplicate_of"] == {
        "kind": "item",
        "ref": rewrite["url"],
        "similarity": 1.0,
        "method": "canonical_url",
    }
    assert twin["story"]["id"] == rewrite["story"]["id"]
    assert rewrite["story"]["size"] == 2

    unrelated = records["data/pages/aljazeera.com.helicopter.html"]
    assert unrelated["status"] == "new"
    assert unrelated["duplicate_of"] is None
    assert unrelated["story"]["seed_refs"] == []
    assert unrelated["story"]["id"] not in {rewrite["story"]["id"], reprint["story"]["id"]}

    known = run(config, "explain", str(reprint["id"])).stdout
    assert "method minhash-" in known
    assert f"score {reprint['duplicate_of']['similarity']:.2f} >= threshold 0.50" in known
    assert f"compared with: seed {VIENTIANE}" in known
    follow_up = run(config, "explain", str(rewrite["id"])).stdout
    assert f"joined story {rewrite['story']['id']}: score" in follow_up
    assert "threshold 0.22" in follow_up
    assert f"story {rewrite['story']['id']}: 2 item(s) from 1 source(s): Asia desk" in follow_up
    assert f"item {twin['id']} [duplicate] Asia desk" in follow_up
    assert f"{LIM_VISIT}: ASEAN Secretary General to visit Russia" in follow_up
    assert "a follow-up of a known story" in follow_up

    digest = run(config, "digest", "--no-poll", "--since", "1d").stdout
    assert "Follow-up to: “ASEAN Secretary General to visit Russia and hold talks" in digest


def test_corpus_add_and_list(tmp_path: Path, corpus: Path) -> None:
    config = with_corpus(write_config(tmp_path, [("Local", "http://127.0.0.1:9/feed")]), corpus)
    markdown = tmp_path / "remarks.md"
    shutil.copy(SEEDS / MFA_REMARKS, markdown)
    page = tmp_path / "colonial.html"
    shutil.copy(PAGES / "dw.com.colonial.html", page)
    added = run(config, "corpus", "add", str(markdown), str(page)).stdout
    assert (corpus / "remarks.md").is_file()
    assert (corpus / "colonial.html").is_file()
    assert "added" in added
    listed = [json.loads(x) for x in run(config, "corpus", "list", "--json").stdout.splitlines()]
    by_name = {r["name"]: r for r in listed}
    assert sorted(by_name) == sorted([LIM_VISIT, VIENTIANE, "remarks.md", "colonial.html"])
    assert all(r["story_id"] is not None for r in listed)  # add indexed them
    # The remarks report the visit the corpus already holds: one story.
    assert by_name["remarks.md"]["story_id"] == by_name[LIM_VISIT]["story_id"]
    assert by_name[VIENTIANE]["story_id"] != by_name[LIM_VISIT]["story_id"]
    assert by_name["remarks.md"]["published_at"] == "2020-02-03T00:00:00Z"
    assert by_name["colonial.html"]["text_chars"] > 500  # text from the page extractor
    assert by_name["colonial.html"]["language"] == "en"
    assert by_name["remarks.md"]["date_source"] == "header"
    assert by_name[LIM_VISIT]["date_source"] == "metadata"
    table = run(config, "corpus", "list").stdout
    assert "remarks.md  2020-02-03 (header)  en  " in table

    # --date records a seed's date beside it; a same-actors report of another year stays apart.
    later = tmp_path / "later-visit.txt"
    later.write_text(
        "ASEAN Secretary General visits Moscow for talks with Lavrov\n\n"
        "ASEAN Secretary General Kao Kim Hourn held talks with Russian Foreign Minister Sergey "
        "Lavrov in Moscow, discussing the ASEAN-Russia strategic partnership.\n",
        "utf-8",
    )
    run(config, "corpus", "add", "--date", "2025-06-10", str(later))
    assert (corpus / "later-visit.txt.toml").read_text("utf-8") == "published = 2025-06-10\n"
    listed = [json.loads(x) for x in run(config, "corpus", "list", "--json").stdout.splitlines()]
    dated = {r["name"]: r for r in listed}["later-visit.txt"]
    assert (dated["published_at"], dated["date_source"]) == ("2025-06-10T00:00:00Z", "metadata")
    assert dated["story_id"] != by_name[LIM_VISIT]["story_id"]

    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    refused = run(config, "corpus", "add", str(pdf), check=False)
    assert refused.returncode == 2
    assert str(pdf) in refused.stderr
    empty = tmp_path / "empty.html"
    empty.write_text("<html><body><nav>Home</nav></body></html>", "utf-8")
    no_text = run(config, "corpus", "add", str(empty), check=False)
    assert no_text.returncode == 2
    assert "empty.html" in no_text.stderr
    assert not (corpus / "empty.html").exists()


# -- in-process: restart, seed changes, retention -------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}", now=START)
    yield store
    store.close()


def serve_copies(server: LocalServer) -> tuple[Source, Source]:
    """Source A publishes VNA's report; source B later reprints it with other boilerplate."""
    server.add(
        "/a/talks.html",
        seed_page(VNA_TALKS, title="Talks in Moscow", before=[], after=[]),
        content_type="text/html",
    )
    server.add(
        "/b/talks.html",
        seed_page(
            VNA_TALKS,
            title="Talks in Moscow (reprint)",
            before=["Reprinted from the Vietnam News Agency"],
            after=["Most read: ASEAN foreign ministers meet", "Follow us on Telegram"],
        ),
        content_type="text/html",
    )
    day = format_datetime(START - timedelta(hours=2))
    server.add(
        "/a.xml", rss([{"title": "Talks", "link": server.url("/a/talks.html"), "date": day}])
    )
    server.add(
        "/b.xml",
        rss([{"title": "Talks (reprint)", "link": server.url("/b/talks.html"), "date": day}]),
    )
    return Source("A", server.url("/a.xml")), Source("B", server.url("/b.xml"))


def test_a_restart_finds_a_near_duplicate_from_stored_signatures_without_re_signing(
    http_server: LocalServer, db: Store, http_config: HttpConfig
) -> None:
    a, b = serve_copies(http_server)
    clock = Clock()
    assert poll(db, [a], clock, http_config)["A"].new == 1
    [original] = db.list_items()
    # Change the stored text behind the index's back: were the history signed again from the
    # items table, the reprint below would no longer match anything.
    with db.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE items SET text = :t WHERE id = :i"),
            {"t": "Unrelated words. " * 50, "i": original.id},
        )
    clock.advance(timedelta(hours=1))
    outcome = poll(db, [a, b], clock, http_config)  # a new run: DedupeIndex.load from the store
    assert (outcome["B"].new, outcome["B"].duplicate) == (0, 1)
    [reprint] = db.list_items(statuses=["duplicate"])
    assert reprint.duplicate_of is not None
    assert reprint.duplicate_of.kind == "item"
    assert reprint.duplicate_of.ref == original.url
    assert reprint.duplicate_of.method.startswith("minhash-")
    assert reprint.story_id == original.story_id is not None
    with db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT item_id FROM signatures ORDER BY item_id")).all()
    assert [r[0] for r in rows] == [original.id, reprint.id]  # one row per item, none re-signed


def test_the_same_source_reprinting_itself_is_not_a_near_duplicate(
    http_server: LocalServer, db: Store, http_config: HttpConfig
) -> None:
    a, _b = serve_copies(http_server)
    both = rss(
        [
            {"title": "Talks", "link": http_server.url("/a/talks.html"), "guid": "1"},
            {"title": "Talks again", "link": http_server.url("/b/talks.html"), "guid": "2"},
        ]
    )
    http_server.add("/a.xml", both)
    outcome = poll(db, [a], Clock(), http_config)["A"]
    assert (outcome.new, outcome.duplicate) == (2, 0)


def test_an_edited_seed_is_signed_again_and_an_unchanged_one_is_not(
    db: Store, corpus: Path
) -> None:
    first = DedupeIndex.load(db, corpus, DedupeConfig(), START)
    assert sorted(first.seeds_signed) == [LIM_VISIT, VIENTIANE]
    before = {s.name: s for s in db.list_seeds()}
    assert before[LIM_VISIT].added_at == START

    later = START + timedelta(days=1)
    again = DedupeIndex.load(db, corpus, DedupeConfig(), later)
    assert again.seeds_signed == []
    assert len(again.near) == 2
    assert {s.name: s for s in db.list_seeds()} == before

    edited = corpus / VIENTIANE
    edited.write_text(edited.read_text("utf-8") + "\nLavrov will also meet Laos's leaders.\n")
    third = DedupeIndex.load(db, corpus, DedupeConfig(), later + timedelta(days=1))
    assert third.seeds_signed == [VIENTIANE]
    after = {s.name: s for s in db.list_seeds()}
    assert after[VIENTIANE].text_hash != before[VIENTIANE].text_hash
    assert after[VIENTIANE].added_at == later + timedelta(days=1)
    assert after[LIM_VISIT] == before[LIM_VISIT]

    (corpus / LIM_VISIT).unlink()
    DedupeIndex.load(db, corpus, DedupeConfig(), later + timedelta(days=2))
    assert [s.name for s in db.list_seeds()] == [VIENTIANE]


def test_items_older_than_the_retention_window_are_not_loaded(
    http_server: LocalServer, db: Store, http_config: HttpConfig
) -> None:
    a, b = serve_copies(http_server)
    clock = Clock()
    poll(db, [a], clock, http_config)
    clock.advance(timedelta(days=100))
    short = DedupeConfig(retention=timedelta(days=90), story_retention=timedelta(days=30))
    assert len(DedupeIndex.load(db, SEEDS.parent / "no-corpus", short, clock()).near) == 0
    long = DedupeConfig(retention=timedelta(days=365))
    assert len(DedupeIndex.load(db, SEEDS.parent / "no-corpus", long, clock()).near) == 1
    # With the 90-day window the old original is out of memory: the reprint is not matched.
    everything_new = replace(PollConfig(), backfill=timedelta(days=36500))
    outcome = poll(db, [b], clock, http_config, config=everything_new, dedupe=short)["B"]
    assert (outcome.new, outcome.duplicate) == (1, 0)


def test_eviction_bounds_a_long_running_index(db: Store) -> None:
    index = DedupeIndex(DedupeConfig(retention=timedelta(days=1)))
    text = " ".join(f"word{i}" for i in range(200))
    signature, size = sign_text(text)
    for hour in range(48):
        index.remember(
            f"https://x.example/{hour}",
            source="X",
            signature=signature,
            shingles=size,
            at=START + timedelta(hours=hour),
        )
    near, _stories = index.evict(START + timedelta(hours=48))
    assert near == 24
    assert len(index.near) == 24


# -- one story per event, whatever the arrival order -------------------------------------------

EVENTS = ROOT / "tests" / "data" / "stories" / "recurring.jsonl"
TWO_ORDERS_EVENTS = ("brics-summit-2024-kazan", "brics-summit-2023-johannesburg")
OUTLET_FEEDS = ("North", "East", "South", "West")


def outlet_feed(_: int, row: dict[str, str]) -> str:
    """One of four feeds, by the report's outlet (as a site lists its own reports)."""
    return OUTLET_FEEDS[hashlib.sha256(row["source"].encode()).digest()[0] % len(OUTLET_FEEDS)]


def report_site(
    server: LocalServer,
    rows: list[dict[str, str]],
    feed_of: Callable[[int, dict[str, str]], str] = outlet_feed,
) -> list[str]:
    """Each report an article page (its headline, its paragraphs), listed with its date in
    the feed `feed_of(n, report)` names; returns the feeds' names."""
    feeds: dict[str, list[str]] = {}
    for n, row in enumerate(rows):
        path = f"/reports/{row['id']}.html"
        title = row["title"] or row["text"][:80]
        paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in row["text"].split("\n") if p)
        server.add(
            path,
            f"<html><head><title>{html.escape(title)}</title></head><body><article>"
            f"<h1>{html.escape(title)}</h1>{paragraphs}</article></body></html>".encode(),
            content_type="text/html",
        )
        when = datetime.fromisoformat(row["published_at"]).replace(hour=12, tzinfo=UTC)
        feeds.setdefault(feed_of(n, row), []).append(
            f"<item><title>{html.escape(title)}</title><link>{server.url(path)}</link>"
            f"<guid>{row['id']}</guid><pubDate>{format_datetime(when)}</pubDate></item>"
        )
    for name, items in feeds.items():
        server.add(
            f"/{name}.xml",
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>'
            f"{''.join(items)}</channel></rss>".encode(),
        )
    return list(feeds)


def event_site(
    server: LocalServer,
    events: tuple[str, ...] = TWO_ORDERS_EVENTS,
    feed_of: Callable[[int, dict[str, str]], str] = lambda n, _: "East" if n % 2 else "West",
) -> list[dict[str, str]]:
    """Feeds ("East", "West" by default) sharing out the real reports of `events` (two BRICS
    summits by default); `feed_of(n, report)` names the feed of the n-th report."""
    with EVENTS.open(encoding="utf-8") as fh:
        rows = [json.loads(x) for x in fh if x.strip()]
    rows = [r for r in rows if r["event"] in events]
    report_site(server, rows, feed_of)
    return rows


def stories_by_url(config: Path) -> frozenset[frozenset[str]]:
    groups: dict[int, set[str]] = {}
    for line in run(config, "items", "--json").stdout.splitlines():
        record = json.loads(line)
        groups.setdefault(record["story"]["id"], set()).add(record["url"])
    return frozenset(frozenset(g) for g in groups.values())


def test_a_site_polled_in_two_orders_gives_the_same_stories(
    http_server: LocalServer, tmp_path: Path
) -> None:
    rows = event_site(http_server)
    found = []
    # One source after the other (each poll a new process that reloads the index from the
    # database, as on another day), in both orders; then both in one backfill.
    for order in (["East", "West"], ["West", "East"], ["East,West"]):
        home = tmp_path / "-".join(order).replace(",", "+")
        home.mkdir()
        sources = [(name, http_server.url(f"/{name}.xml")) for name in ("East", "West")]
        config = write_config(home, sources)
        config.write_text(config.read_text("utf-8") + '[poll]\nbackfill = "36500d"\n', "utf-8")
        for names in order:
            run(config, "poll", *(f"--source={name}" for name in names.split(",")))
        found.append(stories_by_url(config))
    assert found[0] == found[1] == found[2]
    assert sum(len(g) for g in found[0]) == len(rows)
    assert len(found[0]) < len(rows)  # reports were grouped, so the comparison means something
    for group in found[0]:  # never two summits in one story
        events = {r["event"] for r in rows if any(u.endswith(f"/{r['id']}.html") for u in group)}
        assert len(events) == 1


# The reports of the APEC summit in Gyeongju (en/ru/vi previews, departures, the meeting):
# polled one outlet's feed at a time, a later poll merged two stories, one of them stored by
# an earlier poll.
GYEONGJU = ("apec-leaders-meeting-2025-gyeongju",)


def test_stories_do_not_depend_on_where_restarts_cut_the_polls(
    http_server: LocalServer, tmp_path: Path
) -> None:
    """Four feeds, each an outlet's share of the reports: polled together, and one feed a
    poll in reverse (each poll a new process): the same stories, and every stored story is
    the one a later poll's merges left it in."""
    rows = event_site(http_server, GYEONGJU, outlet_feed)
    feeds = [name for name in OUTLET_FEEDS if any(outlet_feed(0, r) == name for r in rows)]
    assert len(feeds) > 2
    found = []
    for order in ([",".join(feeds)], list(reversed(feeds))):
        home = tmp_path / str(len(found))
        home.mkdir()
        sources = [(name, http_server.url(f"/{name}.xml")) for name in feeds]
        config = write_config(home, sources)
        config.write_text(config.read_text("utf-8") + '[poll]\nbackfill = "36500d"\n', "utf-8")
        for names in order:
            run(config, "poll", *(f"--source={name}" for name in names.split(",")))
        found.append(stories_by_url(config))
    assert found[0] == found[1]
    assert sum(len(g) for g in found[0]) == len(rows)
    assert len(found[0]) < len(rows)


def test_a_fresh_article_about_a_new_meeting_is_headlined_with_its_own_title(
    http_server: LocalServer, tmp_path: Path, corpus: Path
) -> None:
    """The same actors in the same city years after a seed's event: a new story, own headline."""
    title = "Lavrov meets ASEAN Secretary General in Moscow"
    page = seed_page(VNA_TALKS, title=title, before=[], after=[])
    http_server.add("/world/lavrov-asean-2026.html", page, content_type="text/html")
    when = format_datetime(datetime.now(UTC) - timedelta(hours=2))
    http_server.add(
        "/fresh.xml",
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title><item>'
        f"<title>{title}</title><link>{http_server.url('/world/lavrov-asean-2026.html')}</link>"
        f"<guid>fresh-1</guid><pubDate>{when}</pubDate></item></channel></rss>".encode(),
    )
    config = with_corpus(write_config(tmp_path, [("Fresh", http_server.url("/fresh.xml"))]), corpus)
    config.write_text(config.read_text("utf-8") + '[[digests]]\nname = "daily"\n', "utf-8")
    run(config, "poll")
    [record] = [json.loads(x) for x in run(config, "items", "--json").stdout.splitlines()]
    assert record["status"] == "new"
    assert record["story"]["seed_refs"] == []  # not filed under the 2020 visit
    explained = run(config, "explain", str(record["id"])).stdout
    assert "time: published" in explained
    digest = run(config, "digest", "--no-poll", "--since", "1d").stdout
    assert f"### [{title}]" in digest
    assert "Follow-up" not in digest
