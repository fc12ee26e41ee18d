"""Make the README screenshot: start the UI in-process, drive it once in headless Chromium, save the page::

.venv/bin/python scripts/ui_screenshot.py --policy smollm2-sketch --backbone sketch --out docs/ui.png
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from reprompt.cli.common import model_spec
from reprompt.cli.main import make_parser
from reprompt.testing.browser import DEMO_EDIT, DEMO_PROMPT, browser_skip_reason, drive
from reprompt.ui.app import launch


def main(argv: list[str] | None = None) -> int:
    """Start the UI in-process on a free port, drive it once, save the screenshot."""
    ap = argparse.ArgumentParser(description="Make the README screenshot of reprompt ui.")
    ap.add_argument("--out", default="docs/ui.png", help="screenshot path")
    ap.add_argument("--prompt", default=DEMO_PROMPT)
    ap.add_argument("--edit", default=DEMO_EDIT)
    ap.add_argument(
        "--after", choices=("enhance", "edit"), default="enhance", help="screenshot the page after this step"
    )
    own, rest = ap.parse_known_args(argv)
    args = make_parser().parse_args(["ui", *rest])
    reason = browser_skip_reason()
    if reason:
        print(f"cannot drive a browser: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="reprompt-ui-") as tmp:
        demo, url = launch(
            model_spec(args),
            out_dir=tmp,
            host="127.0.0.1",
            port=0,
            images=args.images,
            seed=args.seed,
            block=False,
        )
        try:
            obs = drive(url, own.prompt, own.edit, screenshot=own.out)
        finally:
            demo.close()
    first, last = obs.screenshots
    if own.after == "enhance":
        first.replace(own.out)
    else:
        first.unlink(missing_ok=True)
    print(f"enhanced prompt: {obs.enhanced}")
    print(f"blocked requests: {len(obs.blocked)}; wrote {own.out} in {obs.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
