"""The digest issue: window items -> view model -> Markdown / HTML email / text. No network I/O.

`build_digest` is pure; `render_digest` only reads templates through the jinja2 loader.
"""

from monitor.digest.model import (
    CoverageView,
    DigestInput,
    DigestModel,
    HealthView,
    Link,
    SectionView,
    StoryView,
    SuppressedView,
    TagChip,
    build_digest,
)
from monitor.digest.render import RenderedDigest, make_environment, render_digest
from monitor.digest.text import safe_url

__all__ = [
    "CoverageView",
    "DigestInput",
    "DigestModel",
    "HealthView",
    "Link",
    "RenderedDigest",
    "SectionView",
    "StoryView",
    "SuppressedView",
    "TagChip",
    "build_digest",
    "make_environment",
    "render_digest",
    "safe_url",
]
