"""The event signature end to end: two reports of one summit in English and Russian, polled
from a local site, share a story, and `explain` and the story page say why."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from tests.servers import LocalServer
from tests.test_cli import run
from tests.test_daemon import write_config
from tests.web_server import PagesServer

NOW = datetime.now(UTC)
REPORTS = (
    (
        "en",
        "BRICS leaders gather in Johannesburg",
        "Cyril Ramaphosa opened the summit of the BRICS group in Johannesburg on Tuesday, with "
        "Lula, Modi and Xi Jinping discussing trade in national currencies and new members. The "
        "host said the bloc would take decisions on the admission of new members by consensus. "
        "Delegations from more than sixty countries were invited to the outreach session, and "
        "the leaders were expected to adopt a declaration at the end of the two-day meeting.",
    ),
    (
        "ru",
        "Саммит БРИКС открылся в Йоханнесбурге",
        "Сергей Лавров представляет Россию; главы государств обсуждают расчеты в национальных "
        "валютах и расширение состава, сообщает ТАСС. Решения о приеме новых участников будут "
        "приниматься консенсусом, заявили организаторы. На расширенную сессию приглашены "
        "делегации более чем шестидесяти стран, по итогам встречи ожидается принятие декларации.",
    ),
)


def _site(server: LocalServer) -> str:
    items = ""
    for n, (guid, title, text) in enumerate(REPORTS):
        page = f"<html><body><article><h1>{title}</h1><p>{text}</p></article></body></html>"
        server.add(f"/{guid}.html", page.encode(), content_type="text/html")
        published = format_datetime(NOW - timedelta(hours=3 - n))
        items += (
            f"<item><title>{title}</title><link>{server.url(f'/{guid}.html')}</link>"
            f"<guid>{guid}</guid><pubDate>{published}</pubDate></item>"
        )
    rss = f'<?xml version="1.0"?><rss version="2.0"><channel><title>A</title>{items}</channel>'
    rss += "</rss>"
    return server.add("/feed.xml", rss.encode())


def test_two_languages_of_one_summit_share_a_story_by_its_signature(tmp_path: Path) -> None:
    with LocalServer() as http:
        config = write_config(tmp_path, {"Wire": _site(http)})
        run(config, "poll")
    found = [json.loads(line) for line in run(config, "items", "--json").stdout.splitlines()]
    assert len(found) == 2
    stories = {item["story"]["id"] for item in found}  # type: ignore[index]
    assert len(stories) == 1
    later = max(found, key=lambda item: (item["fetched_at"], item["id"]))  # type: ignore[type-var]
    explained = run(config, "explain", str(later["id"])).stdout
    assert "same event signature: summit of BRICS in Johannesburg (+0.15)" in explained
    with PagesServer(config) as pages:
        status, _, body = pages.request("GET", f"/stories/{stories.pop()}")
    assert status == 200
    assert "same event signature: summit of BRICS in Johannesburg" in body.decode()
