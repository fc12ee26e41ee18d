"""Drive the UI in a real headless Chromium (Debian's package) with Playwright for Python — no browser
download. Used by the browser test and by ``scripts/ui_screenshot.py`` (the README screenshot).

The page may load only from the app's own address: every other request is blocked and reported.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEMO_PROMPT = "a photo of a sofa below a vase"
DEMO_EDIT = "A photo of a sofa below a vase. A red vase at the top of the image. A green sofa at the bottom of the image."


def find_chromium() -> str | None:
    """``$REPROMPT_CHROMIUM``, else Debian's ``chromium`` on the PATH; None when there is none."""
    env = os.environ.get("REPROMPT_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browser_skip_reason() -> str | None:
    """Why the browser test cannot run here (None when it can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install 'reprompt[ui]')"
    if find_chromium() is None:
        return "no Chromium found (apt-get install -y chromium, or set REPROMPT_CHROMIUM)"
    return None


@dataclass
class Observed:
    """What the browser saw, for assertions."""

    enhanced: str = ""
    original: str = ""
    reasoning: str = ""
    status: str = ""
    left_srcs: list[str] = field(default_factory=list)
    right_srcs: list[str] = field(default_factory=list)
    right_srcs_after_edit: list[str] = field(default_factory=list)
    left_srcs_after_edit: list[str] = field(default_factory=list)
    enhanced_after_edit: str = ""
    enhanced_from_history: str = ""
    history_rows: int = 0
    download_names: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def _srcs(page, elem_id: str) -> list[str]:
    return page.eval_on_selector_all(f"#{elem_id} img", "els => els.map(e => e.getAttribute('src') || '')")


def _wait_images(
    page, elem_id: str, n: int, timeout_ms: int, differ_from: list[str] | None = None
) -> list[str]:
    """Wait until ``n`` images are loaded in a gallery (and differ from ``differ_from`` when given)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline:
        ok = page.eval_on_selector_all(
            f"#{elem_id} img",
            "els => els.filter(e => e.complete && e.naturalWidth > 0 && e.getAttribute('src')).length",
        )
        srcs = _srcs(page, elem_id)
        if ok >= n and (differ_from is None or (srcs and srcs != differ_from)):
            return srcs
        error = page.query_selector(".toast-body.error, .toast-wrap .error")
        if error is not None:
            raise RuntimeError(f"the page shows an error: {error.inner_text()[:300]}")
        page.wait_for_timeout(100)
    raise TimeoutError(f"no {n} loaded image(s) in #{elem_id} after {timeout_ms / 1000:.0f} s")


def _value(page, selector: str) -> str:
    return page.eval_on_selector(selector, "e => e.value")


def drive(
    url: str,
    prompt: str = DEMO_PROMPT,
    edited: str = DEMO_EDIT,
    screenshot: str | Path | None = None,
    timeout_s: float = 180.0,
    chromium: str | None = None,
) -> Observed:
    """Type ``prompt``, click Enhance, wait for both galleries, then replace the enhanced prompt with
    ``edited``, click Render edited prompt and wait for the right-hand images to change; finally click
    the first turn in the history and wait for its enhanced prompt to come back.

    Screenshots: ``<screenshot>`` after the edit (``.first.png`` beside it after the first render).
    """
    from playwright.sync_api import sync_playwright

    exe = chromium or find_chromium()
    if exe is None:
        raise RuntimeError(browser_skip_reason() or "no Chromium")
    obs = Observed()
    own = urlparse(url).netloc
    timeout_ms = int(timeout_s * 1000)
    t0 = time.perf_counter()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)

            def gate(route):
                u = route.request.url
                if urlparse(u).scheme in ("data", "blob") or urlparse(u).netloc == own:
                    return route.continue_()
                obs.blocked.append(u)
                return route.abort()

            page.route("**/*", gate)
            page.set_default_timeout(timeout_ms)
            page.goto(url, wait_until="domcontentloaded")
            page.wait_for_selector("#prompt textarea")
            page.fill("#prompt textarea", prompt)
            page.click("#enhance-btn")
            obs.left_srcs = _wait_images(page, "original-images", 1, timeout_ms)
            obs.right_srcs = _wait_images(page, "rewritten-images", 1, timeout_ms)
            page.wait_for_function(
                "() => document.querySelector('#enhanced textarea').value.length > 0", timeout=timeout_ms
            )
            obs.enhanced = _value(page, "#enhanced textarea")
            obs.original = _value(page, "#original textarea")
            obs.reasoning = _value(page, "#reasoning textarea")
            obs.status = page.inner_text("#status")
            if screenshot:
                first = Path(screenshot).with_suffix(".first.png")
                page.screenshot(path=str(first), full_page=True)
                obs.screenshots.append(first)
            page.fill("#enhanced textarea", edited)
            page.click("#render-edit-btn")
            obs.right_srcs_after_edit = _wait_images(page, "rewritten-images", 1, timeout_ms, obs.right_srcs)
            obs.left_srcs_after_edit = _srcs(page, "original-images")
            obs.enhanced_after_edit = _value(page, "#enhanced textarea")
            rows = "() => Number(document.querySelector('#history [role=grid]').getAttribute('aria-rowcount')) - 1"
            page.wait_for_function(f"() => ({rows})() >= 2", timeout=timeout_ms)
            obs.history_rows = page.evaluate(rows)
            obs.download_names = page.eval_on_selector_all(
                "#downloads a", "els => els.map(e => e.getAttribute('download') || e.textContent.trim())"
            )
            if screenshot:
                page.screenshot(path=str(screenshot), full_page=True)
                obs.screenshots.append(Path(screenshot))
            # the history: clicking the oldest row brings the first turn back
            page.locator("#history [role=row][aria-rowindex]").last.locator("[role=gridcell]").nth(2).click()
            page.wait_for_function(
                "(v) => document.querySelector('#enhanced textarea').value === v",
                arg=obs.enhanced,
                timeout=timeout_ms,
            )
            obs.enhanced_from_history = _value(page, "#enhanced textarea")
        finally:
            browser.close()
    obs.seconds = time.perf_counter() - t0
    return obs


@dataclass
class BadSeedObserved:
    """What the page showed for a seed no generator takes, and for the request after it."""

    message: str = ""
    error_toasts: list[str] = field(default_factory=list)
    kept_srcs: bool = False
    message_after: str = ""
    recovered: bool = False


def drive_bad_seed(
    url: str,
    prompt: str = DEMO_PROMPT,
    seed: str = "1e30",
    timeout_s: float = 120.0,
    chromium: str | None = None,
) -> BadSeedObserved:
    """Render once, then type ``seed`` into the seed box and press Enhance again; then a valid seed. Records
    the message shown, any error toasts, whether the first images stayed, and whether the next request worked."""
    from playwright.sync_api import sync_playwright

    exe = chromium or find_chromium()
    if exe is None:
        raise RuntimeError(browser_skip_reason() or "no Chromium")
    obs = BadSeedObserved()
    timeout_ms = int(timeout_s * 1000)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(timeout_ms)
            page.goto(url, wait_until="domcontentloaded")
            page.wait_for_selector("#prompt textarea")
            page.fill("#prompt textarea", prompt)
            page.click("#enhance-btn")
            first = _wait_images(page, "original-images", 1, timeout_ms)
            page.fill("#seed input", seed)
            page.click("#enhance-btn")
            page.wait_for_function(
                "() => (document.querySelector('#message')?.innerText || '').includes('seed')",
                timeout=timeout_ms,
            )
            obs.message = page.inner_text("#message")
            obs.error_toasts = [e.inner_text() for e in page.query_selector_all(".toast-body.error")]
            obs.kept_srcs = _srcs(page, "original-images") == first
            page.fill("#seed input", "7")
            page.click("#enhance-btn")
            _wait_images(page, "original-images", 1, timeout_ms, differ_from=first)
            page.wait_for_function(
                "() => !(document.querySelector('#message')?.innerText || '').trim()", timeout=timeout_ms
            )
            obs.message_after = page.inner_text("#message").strip()
            obs.recovered = True
        finally:
            browser.close()
    return obs
