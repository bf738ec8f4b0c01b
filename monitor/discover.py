"""Sitemap and listing-page bytes -> entries (article links) for sources without a feed. No I/O."""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

from monitor.errors import ParseError
from monitor.models import Entry
from monitor.parse import absolute_http_url, iso_datetime, language_code, strip_entity_declarations

if TYPE_CHECKING:  # lxml loads with the first sitemap or page: a warm poll needs neither
    from lxml import etree, html

MAX_SITEMAP_BYTES = 50_000_000  # decompressed; the sitemap protocol's own limit is 50 MB
MAX_SITEMAP_URLS = 50_000  # the protocol's limit per sitemap file
MAX_LINKS = 500  # per listing page

_GZIP_MAGIC = b"\x1f\x8b"
_NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
# fmt: off
_FILE_EXTENSIONS = frozenset({
    "pdf", "jpg", "jpeg", "png", "gif", "svg", "webp", "bmp", "ico", "zip", "rar", "7z", "gz",
    "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "mp3", "mp4", "m4a", "avi", "mov",
    "wmv", "webm", "ogg", "css", "js", "json", "xml", "rss", "atom", "txt", "csv", "ics", "apk",
    "exe",
})
# Path segments of navigation rather than articles.
_NON_ARTICLE_SEGMENTS = frozenset({
    "category", "categories", "tag", "tags", "topic", "topics", "section", "sections", "page",
    "search", "login", "logout", "signin", "sign-in", "signup", "sign-up", "register", "account",
    "profile", "user", "users", "author", "authors", "feed", "rss", "contact", "contacts",
    "about", "privacy", "privacy-policy", "terms", "cookies", "sitemap", "archive", "archives",
    "wp-admin", "wp-login.php", "cart", "subscribe", "newsletter", "lang", "language",
})
_NON_ARTICLE_QUERY_KEYS = frozenset({
    "page", "paged", "s", "q", "query", "search", "lang", "language", "hl", "locale",
    "replytocom", "share",
})
_ID_QUERY_KEYS = frozenset({
    "id", "p", "aid", "nid", "article", "articleid", "news_id", "newsid", "itemid",
})
# fmt: on
_LANGUAGE_SEGMENT = re.compile(r"^[a-z]{2}(?:[-_][a-z0-9]{2,4})?$")  # en, vi-vn, pt-br, pt-002
_NUMERIC_ID = re.compile(r"\d{4,}")
_SLUG_WORD = re.compile(r"[^\W_]+")
_SKIPPED_ANCESTORS = frozenset({"nav", "footer"})


def parse_sitemap(body: bytes, *, url: str) -> tuple[list[Entry], list[str]]:
    """Parse a sitemap: (entries of a `urlset`, child sitemap URLs of a `sitemapindex`).

    Handles gzipped bodies, Google News sitemaps and plain-text sitemaps (one URL a line).

    Raises:
        ParseError: `too_large` over MAX_SITEMAP_BYTES decompressed, `not_a_feed` for an
            HTML page or a non-sitemap document, `parse` for garbage.
    """
    if body.startswith(_GZIP_MAGIC):
        body = _gunzip(body, url=url)
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise ParseError(url, "empty sitemap", error_class="parse")
    if not head.startswith(b"<"):
        return _text_sitemap(head, base=url), []
    from lxml import etree

    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=True
    )
    try:
        root = etree.fromstring(strip_entity_declarations(body), parser=parser)
    except etree.XMLSyntaxError as exc:
        raise ParseError(url, f"unparseable sitemap: {exc}", error_class="parse") from exc
    if root is None:
        raise ParseError(url, "unparseable sitemap", error_class="parse")
    kind = etree.QName(root).localname.lower()
    if kind == "sitemapindex":
        children = _unique_urls((_child_text(s, "loc") for s in _children(root, "sitemap")), url)
        return [], children[:MAX_SITEMAP_URLS]
    if kind != "urlset":
        what = "an HTML page" if kind == "html" else f"an XML document <{kind}>"
        raise ParseError(url, f"got {what}, not a sitemap", error_class="not_a_feed")
    entries: list[Entry] = []
    seen: set[str] = set()
    for node in _children(root, "url"):
        loc = absolute_http_url(_child_text(node, "loc"), url)
        if loc is None or loc in seen:
            continue
        seen.add(loc)
        entries.append(_sitemap_entry(node, loc))
        if len(entries) >= MAX_SITEMAP_URLS:
            break
    return entries, []


def _sitemap_entry(node: etree._Element, loc: str) -> Entry:
    lastmod = iso_datetime(_child_text(node, "lastmod"))
    news = node.find(f"{{{_NEWS_NS}}}news")
    if news is None:
        return Entry(url=loc, published_at=lastmod, updated_at=lastmod)
    language = news.findtext(f"{{{_NEWS_NS}}}publication/{{{_NEWS_NS}}}language")
    published = iso_datetime(news.findtext(f"{{{_NEWS_NS}}}publication_date"))
    return Entry(
        url=loc,
        title=_collapse(news.findtext(f"{{{_NEWS_NS}}}title")),
        published_at=published or lastmod,
        updated_at=lastmod,
        language=language_code(language),
    )


def _gunzip(body: bytes, *, url: str) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, MAX_SITEMAP_BYTES)
    except zlib.error as exc:
        raise ParseError(url, f"corrupt gzip data: {exc}", error_class="parse") from exc
    if inflater.unconsumed_tail:
        raise ParseError(
            url,
            f"sitemap larger than {MAX_SITEMAP_BYTES} bytes once decompressed",
            error_class="too_large",
        )
    return data


def _text_sitemap(body: bytes, *, base: str) -> list[Entry]:
    lines = body.decode("utf-8", "replace").splitlines()
    if lines and not lines[0].strip().lower().startswith(("http://", "https://")):
        raise ParseError(url=base, detail="not a sitemap", error_class="not_a_feed")
    urls = _unique_urls(lines, base)[:MAX_SITEMAP_URLS]
    return [Entry(url=link) for link in urls]


def _children(root: etree._Element, name: str) -> Iterable[etree._Element]:
    return (child for child in root if isinstance(child.tag, str) and _local(child) == name)


def _child_text(node: etree._Element, name: str) -> str | None:
    for child in _children(node, name):
        return str(child.text) if child.text is not None else None
    return None


def _local(node: etree._Element) -> str:
    from lxml import etree

    return str(etree.QName(node).localname).lower()


def discover_links(body: bytes, *, url: str, selector: str | None = None) -> list[Entry]:
    """Article links on a listing page, in page order, with the link text as title.

    With `selector`, the links it selects (an `a[href]`, or the links inside a selected
    element). Without, same-site links whose path looks like an article.

    Raises:
        ParseError: `parse` for an invalid CSS selector.
    """
    if not body.strip():
        return []
    from lxml import etree, html

    try:
        root = html.document_fromstring(body, parser=html.HTMLParser(no_network=True))
    except (etree.ParserError, ValueError):
        return []
    base = url
    base_href = root.xpath("string(//base[@href][1]/@href)")
    if isinstance(base_href, str) and base_href.strip():
        base = urljoin(url, base_href.strip())
    if selector is None:
        anchors = [a for a in root.iter("a") if a.get("href") and not _in_navigation(a)]
        site = site_of(url)
        page_path = urlsplit(url).path
    else:
        anchors = _selected_anchors(root, selector, url=url)
    links: dict[str, str | None] = {}
    page = _without_fragment(url)
    for anchor in anchors:
        link = absolute_http_url(anchor.get("href"), base)
        if link is None:
            continue
        link = _without_fragment(link)
        if link == page:
            continue
        if selector is None and (
            site_of(link) != site
            or anchor.get("hreflang")
            or not _looks_like_article(link, page_path)
        ):
            continue
        title = _anchor_title(anchor)
        if link not in links:
            if len(links) >= MAX_LINKS:
                break
            links[link] = title
        elif links[link] is None:
            links[link] = title  # an image link first, the headline link second
    return [Entry(url=link, title=title) for link, title in links.items()]


def _selected_anchors(root: html.HtmlElement, selector: str, *, url: str) -> list[html.HtmlElement]:
    from cssselect import SelectorError
    from lxml.cssselect import CSSSelector
    from lxml.etree import XPathEvalError

    try:
        selected = CSSSelector(selector)(root)
    except (SelectorError, XPathEvalError) as exc:
        raise ParseError(url, f"invalid CSS selector {selector!r}: {exc}") from exc
    anchors: list[html.HtmlElement] = []
    for element in selected:
        if element.tag == "a":
            if element.get("href"):
                anchors.append(element)
        else:
            anchors.extend(a for a in element.iter("a") if a.get("href"))
    return anchors


def _in_navigation(anchor: html.HtmlElement) -> bool:
    tags = {ancestor.tag for ancestor in anchor.iterancestors()}
    if tags & _SKIPPED_ANCESTORS:
        return True
    # The site header; an <article>'s own <header> holds its headline.
    return "header" in tags and "article" not in tags


def _anchor_title(anchor: html.HtmlElement) -> str | None:
    text = _collapse(anchor.text_content())
    if text:
        return text
    candidates = [anchor.get("title"), anchor.get("aria-label")]
    candidates += [image.get("alt") for image in anchor.iter("img")]
    return next((text for text in map(_collapse, candidates) if text), None)


def _looks_like_article(link: str, page_path: str) -> bool:
    parts = urlsplit(link)
    segments = [s for s in parts.path.lower().split("/") if s]
    query = dict(parse_qsl(parts.query.lower(), keep_blank_values=True))
    if any(query.get(key, "").isdigit() for key in _ID_QUERY_KEYS):
        return True
    if any(key in _NON_ARTICLE_QUERY_KEYS for key in query):
        return False
    language, content = _split_language(parts.path)
    page_language, page_content = _split_language(page_path)
    if not content or content == page_content:
        return False  # the home page, a language's home page, or this page in another language
    if language and page_language and language != page_language:
        return False  # a language switch: the other edition of a multilingual site
    if any(segment in _NON_ARTICLE_SEGMENTS for segment in segments):
        return False
    last = content[-1]
    if "." in last and last.rsplit(".", 1)[1] in _FILE_EXTENSIONS:
        return False
    stem = last.rsplit(".", 1)[0]
    return (
        bool(_NUMERIC_ID.search(stem))
        or len(_SLUG_WORD.findall(stem)) >= 3
        or len(stem) >= 25
        or len(content) >= 3
    )


def _split_language(path: str) -> tuple[str | None, list[str]]:
    """A leading language code (`/en/`, `/vi-vn/`) and the path segments after it."""
    segments = [s for s in path.lower().split("/") if s]
    if segments and _LANGUAGE_SEGMENT.match(segments[0]):
        return segments[0], segments[1:]
    return None, segments


def site_of(link: str) -> str:
    """The host a link belongs to, lower-cased, `www.`-insensitive."""
    host = (urlsplit(link).hostname or "").lower()
    return host.removeprefix("www.")


def _without_fragment(link: str) -> str:
    return urlunsplit(urlsplit(link)._replace(fragment=""))


def _unique_urls(values: Iterable[str | None], base: str) -> list[str]:
    urls: dict[str, None] = {}
    for value in values:
        link = absolute_http_url(value, base)
        if link is not None:
            urls.setdefault(link)
    return list(urls)


def _collapse(value: str | None) -> str | None:
    return " ".join(value.split()) or None if value else None
