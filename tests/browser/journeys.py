"""What the browser journeys share besides fixtures: screenshots on request, the check that a page
does not scroll sideways (naming what sticks out when it does), and the main navigation, opened
first where it is a menu."""

import os
from pathlib import Path

SCREENS = os.environ.get("PROMPTLEDGER_SCREENSHOTS")  # a folder: the journeys save their pages there

# The outermost elements reaching past the window outside a scroll box: the culprits of a wide page.
WIDER_THAN_THE_SCREEN = """() => {
  const limit = document.documentElement.clientWidth;
  const inScrollBox = el => {
    for (let p = el.parentElement; p; p = p.parentElement) if (getComputedStyle(p).overflowX !== "visible") return true;
    return false;
  };
  return [...document.querySelectorAll("body *")]
    .filter(el => el.getBoundingClientRect().right > limit + 0.5 && !inScrollBox(el))
    .slice(0, 8).map(el => `${el.tagName.toLowerCase()}.${el.className} ${el.getBoundingClientRect().right}`);
}"""


def shoot(page, name):
    """With ``PROMPTLEDGER_SCREENSHOTS=DIR``, save the whole page as ``DIR/<name>-<width>.png``."""
    if SCREENS:
        folder = Path(SCREENS)
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}-{page.viewport_size['width']}.png"), full_page=True)


def assert_no_sideways_scroll(page):
    width, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    wider = page.evaluate(WIDER_THAN_THE_SCREEN) if width > client else []
    assert width <= client, f"{page.url} is {width}px wide in a {client}px window: {wider}"


def main_navigation(page):
    """The main navigation, opened first where it is a menu (a phone's width; issue 17)."""
    if page.viewport_size["width"] < 860:
        page.locator(".nav-toggle-label").click()
    return page.get_by_role("navigation", name="Main")
