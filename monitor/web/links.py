"""The links a digest and the pages carry: item pages and signed correction links. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitor.web.sign import sign_link


@dataclass(frozen=True, slots=True)
class ItemActions:
    """What a digest item links to: its page and, where they apply, the corrections."""

    page: str
    split: str | None  # "Not the same story": only in a story of more than one report
    topics: str | None  # "Wrong topic?": a page listing the item's tags, if it has any


@dataclass(frozen=True, slots=True)
class LinkMaker:
    """Builds absolute links under `base` (the `[server] public_url`, or "" for links
    within the pages), signed with `secret`, valid until `expires`."""

    base: str
    secret: bytes
    expires: datetime

    def item(self, item_id: int) -> str:
        return f"{self.base}/items/{item_id}"

    def story(self, story_id: int) -> str:
        return f"{self.base}/stories/{story_id}"

    def fix(self, item_id: int, action: str, topic: str = "") -> str:
        """A signed link to the confirmation page of `action` on the item."""
        token = sign_link(self.secret, item_id, action, expires=self.expires, topic=topic)
        return f"{self.base}/fix/{token}"

    def actions(self, item_id: int, *, multi_report: bool, tagged: bool) -> ItemActions:
        return ItemActions(
            page=self.item(item_id),
            split=self.fix(item_id, "split") if multi_report else None,
            topics=self.fix(item_id, "topics") if tagged else None,
        )
