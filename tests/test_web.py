"""The analyst's loop end to end on real servers: the daemon mails a digest, its "Not the same
story" and "Wrong topic" links are followed (GET shows a form, POST corrects), and later polls
and `retag` obey the corrections. The daemon is bound beyond loopback, so pages need a token."""

from __future__ import annotations

import email
import email.policy
import http.client
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from monitor.web.sign import sign_link
from tests.daemon_process import DaemonProcess, free_port, health
from tests.servers import LocalServer
from tests.smtp_server import SmtpServer
from tests.test_cli import run
from tests.test_daemon import write_config
from tests.test_web_server import serve_reports

TOKEN = "web-token-for-the-daemon-test"
SECRET = "a-link-key-for-the-daemon-test-0123456789"


def request(
    url: str, *, form: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    sent = dict(headers or {})
    body = None
    if form is not None:
        body = urlencode(form)
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request("POST" if form is not None else "GET", parts.path, body=body, headers=sent)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def items(config: Path) -> dict[int, dict[str, Any]]:
    lines = run(config, "items", "--json").stdout.splitlines()
    return {r["id"]: r for r in map(json.loads, lines)}


def token_of(page: str) -> str:
    found = re.search(r'name="token" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def test_the_analyst_corrects_a_story_and_a_topic_from_the_mailed_digest(
    http_server: LocalServer, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    feed = serve_reports(http_server, ["lim", "mfa"])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, {"MFA": feed}, smtp_port=smtp_server.port, server_port=port)
    text = config.read_text("utf-8")
    config.write_text(
        text.replace("[server]\n", f'[server]\nhost = "0.0.0.0"\npublic_url = "{base}"\n')
    )
    env = {"MONITOR_WEB_TOKEN": TOKEN, "MONITOR_SECRET": SECRET}
    with DaemonProcess(config, **env) as daemon:
        daemon.wait_for("/healthz without a token", lambda: health(port))
        assert request(f"{base}/")[0] == 403  # bound to 0.0.0.0: the pages need the token
        assert request(f"{base}/", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200

        received = daemon.wait_for("a mailed digest", lambda: smtp_server.messages)
        message = email.message_from_bytes(received[0].data, policy=email.policy.default)
        html_part = message.get_body(("html",))
        assert html_part is not None
        mailed = html_part.get_content()
        links = re.findall(rf'href="({re.escape(base)}/fix/[^"]+)"', mailed)
        splits = [link for link in links if ".split." in link]
        topics = [link for link in links if ".topics." in link]
        assert len(splits) == 2  # each report of the story of two
        before = items(config)
        story = {r["story"]["id"] for r in before.values()}
        assert len(story) == 1
        [story_id] = story

        # "Not the same story": the GET shows a form and changes nothing; the POST splits.
        split = splits[1]
        item_id = int(split.rsplit("/", 1)[1].split(".")[0])
        status, page = request(split)
        assert status == 200
        assert 'method="post" action="/fix"' in page
        assert items(config) == before
        assert request(split[:-2] + ("AA" if split[-2:] != "AA" else "BB"))[0] == 403
        expired = sign_link(
            SECRET.encode(), item_id, "split", expires=datetime.now(UTC) - timedelta(seconds=1)
        )
        assert request(f"{base}/fix", form={"token": expired})[0] == 403
        assert items(config) == before
        status, done = request(f"{base}/fix", form={"token": token_of(page)})
        assert status == 200, done
        assert f'href="/items/{item_id}"' in done
        after = items(config)
        assert after[item_id]["story"]["size"] == 1
        assert after[item_id]["story"]["id"] != story_id
        others = [r for i, r in after.items() if i != item_id]
        assert all(r["story"]["id"] == story_id for r in others)  # the rest keeps its id
        new_story = after[item_id]["story"]["id"]
        again = request(f"{base}/fix", form={"token": token_of(page)})
        assert again[0] == 200  # the same correction twice is recorded once

        # The next poll brings a third report of the same event: the split one stays apart.
        serve_reports(http_server, ["lim", "mfa", "vna"])
        daemon.wait_for("the third report", lambda: len(items(config)) == 3)
        latest = items(config)
        assert latest[item_id]["story"]["id"] == new_story
        assert latest[item_id]["story"]["id"] != story_id

        # "Wrong topic?": the page lists the item's tags; removing one survives `retag`.
        lead = int(topics[0].rsplit("/", 1)[1].split(".")[0])
        status, page = request(topics[0])
        assert status == 200
        untag = token_of(page)
        tags_before = [t["id"] for t in latest[lead]["topics"]]
        status, done = request(f"{base}/fix", form={"token": untag})
        assert status == 200, done
        tags_after = [t["id"] for t in items(config)[lead]["topics"]]
        assert len(tags_after) == len(tags_before) - 1
        [removed] = set(tags_before) - set(tags_after)
        run(config, "retag")
        assert removed not in [t["id"] for t in items(config)[lead]["topics"]]
        listed = run(config, "corrections", "list", "--json").stdout
        assert '"split"' in listed
        assert '"untag"' in listed
        assert daemon.stop() == 0
    assert "Traceback" not in daemon.log()
    assert SECRET not in daemon.log()
    assert TOKEN not in daemon.log()
