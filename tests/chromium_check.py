"""Headless Chromium checks of a digest: overflow, first story position, screenshots (runs it).

Usage as a script (screenshots for a person to look at):
    python tests/chromium_check.py DIGEST.html OUT_DIR
writes OUT_DIR/digest-{375,800}-{light,dark}.png;
    python tests/chromium_check.py --pages BASE_URL OUT_DIR PATH...
writes OUT_DIR/<path>-{375,1280}.png of the daemon's web pages (e.g. / /items/1).
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
_MEASURE = re.compile(r'data-measure-(\d+)="(\d+) (\d+) (-?\d+) (-?\d+)"')


def find_chromium() -> str | None:
    """The Chromium (or Chrome) binary on PATH, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(binary: str, args: Sequence[str], timeout: float = 90) -> str:
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [binary, *_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    return result.stdout


def measure_widths(binary: str, page: str, widths: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Lay `page` out in iframes `widths` px wide; return width -> (scrollWidth, innerWidth)."""
    return {w: (m.scroll, m.inner) for w, m in measure_layout(binary, page, widths).items()}


@dataclass(frozen=True)
class Layout:
    """What one width shows: page and viewport width, and where the first story ends.

    `headline_bottom` / `summary_bottom`: px from the top of the page to the bottom of the
    first `.headline` / `.summary` element, -1 when the page has none.
    """

    scroll: int
    inner: int
    headline_bottom: int
    summary_bottom: int


def measure_layout(binary: str, page: str, widths: Sequence[int]) -> dict[int, Layout]:
    """Lay `page` out in iframes `widths` px wide and measure it (see `Layout`).

    Headless windows are at least 500 px wide, so narrow viewports are iframes of a wrapper
    page (srcdoc iframes share its origin, so the wrapper can measure them). The email itself
    carries no script; only this wrapper does.
    """
    frames = "\n".join(
        f'<iframe id="f{w}" width="{w}" height="30000" style="border:0;display:block" '
        f'srcdoc="{html.escape(page, quote=True)}"></iframe>'
        for w in widths
    )
    script = (
        "function bottom(d, sel) { var e = d.querySelector(sel);"
        " return e ? Math.ceil(e.getBoundingClientRect().bottom) : -1; }"
        "window.addEventListener('load', function () {"
        + "".join(
            f"var d{w} = document.getElementById('f{w}').contentDocument;"
            f"document.body.setAttribute('data-measure-{w}', "
            f"d{w}.documentElement.scrollWidth + ' ' + d{w}.defaultView.innerWidth"
            f" + ' ' + bottom(d{w}, '.headline') + ' ' + bottom(d{w}, '.summary'));"
            for w in widths
        )
        + "});"
    )
    wrapper = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'></head>"
        f"<body style='margin:0'>{frames}<script>{script}</script></body></html>"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "measure.html"
        path.write_text(wrapper, encoding="utf-8")
        dom = _run(binary, ["--window-size=1000,1000", "--dump-dom", path.as_uri()])
    return {
        int(w): Layout(int(s), int(i), int(h), int(b)) for w, s, i, h, b in _MEASURE.findall(dom)
    }


def dump_dom(binary: str, url: str, width: int = 1280) -> str:
    """The DOM of `url` after it loaded (and after any script that could run, ran)."""
    return _run(binary, [f"--window-size={width},2000", "--dump-dom", url])


def screenshot_url(binary: str, url: str, png: Path, width: int) -> None:
    """Screenshot a served page at `width` px (headless windows this narrow work for URLs)."""
    _run(binary, [f"--window-size={width},1600", f"--screenshot={png}", url])


def screenshot(binary: str, page: Path, png: Path, width: int, *, dark: bool = False) -> None:
    """Screenshot `page` at `width` px; `dark` asks for prefers-color-scheme: dark."""
    args = [f"--window-size={width},3000", f"--screenshot={png}"]
    if dark:
        args.append("--force-dark-mode")
    _run(binary, [*args, page.resolve().as_uri()])


def shoot_pages(binary: str, base: str, out: Path, paths: Sequence[str]) -> list[Path]:
    """Screenshots of served pages at 375 and 1280 px."""
    pngs = []
    for path in paths:
        name = path.strip("/").replace("/", "-") or "archive"
        for width in (375, 1280):
            png = out / f"{name}-{width}.png"
            screenshot_url(binary, base.rstrip("/") + path, png, width)
            pngs.append(png)
    return pngs


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["--pages"] and len(argv) >= 4:
        binary = find_chromium()
        if binary is None:
            print("chromium not found on PATH", file=sys.stderr)
            return 1
        out = Path(argv[2])
        out.mkdir(parents=True, exist_ok=True)
        for png in shoot_pages(binary, argv[1], out, argv[3:]):
            print(png)
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    binary = find_chromium()
    if binary is None:
        print("chromium not found on PATH", file=sys.stderr)
        return 1
    page, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for width in (375, 800):
        for dark in (False, True):
            png = out / f"digest-{width}-{'dark' if dark else 'light'}.png"
            screenshot(binary, page, png, width, dark=dark)
            print(png)
    for width, m in sorted(
        measure_layout(binary, page.read_text(encoding="utf-8"), (320, 375, 800)).items()
    ):
        print(
            f"{width}px: scrollWidth={m.scroll} innerWidth={m.inner} first headline ends at "
            f"{m.headline_bottom}px, its summary at {m.summary_bottom}px"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
