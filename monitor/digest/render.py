"""Render a digest model to Markdown, inlined-CSS HTML and 72-column text; reads templates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import css_inline
import jinja2

from monitor.digest.model import DigestModel
from monitor.digest.text import clean_text, md_escape, wrap_text

TEMPLATES = ("digest.md.j2", "digest.html.j2", "digest.txt.j2")
TEXT_WIDTH = 72

# Remote stylesheets are never fetched (a template override must not make rendering do
# network I/O); @media rules (dark mode, narrow screens) stay in <style> for the clients
# that honour them, everything else goes inline.
_INLINER = css_inline.CSSInliner(
    keep_at_rules=True,
    keep_link_tags=False,
    load_remote_stylesheets=False,
    minify_css=True,
)
# css-inline puts the kept @media rules first in <head>; they go back after <meta charset>
# and <title> (a charset declaration belongs in the first 1024 bytes).
_LEADING_STYLE = re.compile(r"<head>(<style>.*?</style>)(.*?)</head>", re.DOTALL)


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    subject: str  # one line, no CR/LF
    markdown: str
    html: str
    text: str


def make_environment(templates_dir: Path | None, default_dir: Path) -> jinja2.Environment:
    """A jinja2 environment: templates in `templates_dir` override the defaults one by one.

    Autoescaping is on for `.html` templates; Markdown templates escape untrusted text with
    the `md` filter, text templates wrap with `wrap`.
    """
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        loaders.append(jinja2.FileSystemLoader(templates_dir))
    loaders.append(jinja2.FileSystemLoader(default_dir))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml", "html.j2"),
            disabled_extensions=("md.j2", "txt.j2", "css"),
            default_for_string=True,
            default=True,
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["md"] = md_escape
    env.filters["wrap"] = _wrap_filter
    return env


def _wrap_filter(text: str, indent: str = "", subsequent: str | None = None) -> str:
    return wrap_text(text, TEXT_WIDTH, indent, subsequent)


def render_digest(model: DigestModel, env: jinja2.Environment) -> RenderedDigest:
    """Render all three formats. Pure apart from reading templates through `env`'s loader."""
    context = {"digest": model}
    markdown = env.get_template("digest.md.j2").render(context)
    html = _inline_css(env.get_template("digest.html.j2").render(context))
    text = env.get_template("digest.txt.j2").render(context)
    return RenderedDigest(
        subject=clean_text(model.subject, 200),
        markdown=_tidy(markdown),
        html=html if html.endswith("\n") else html + "\n",
        text=_tidy(text),
    )


def _inline_css(html: str) -> str:
    inlined = _INLINER.inline(html)
    return _LEADING_STYLE.sub(lambda m: f"<head>{m.group(2)}{m.group(1)}\n</head>", inlined, 1)


def _tidy(body: str) -> str:
    """No trailing spaces, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in body.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"
