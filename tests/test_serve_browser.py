"""The draw-a-digit page in Debian's headless Chromium, drawn on with real mouse events.

The server (``python -m stages.serve`` with a model trained on the real MNIST) and the
browser share a network namespace of their own whose only interface is its loopback, where
the machine allows one (tests/support/headless_chromium.py), and every request the page
makes is recorded: none may leave 127.0.0.1. A drawn "1", "0" and "7" must read as such,
Clear must empty the page, a chosen and a dropped picture must read as predict reads them.

``SERVE_SCREENSHOT=docs/serve.png`` (``make serve-screenshot``) saves the page after a
drawn digit, for the README.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from support import REPO
from support.headless_chromium import Chromium, find_chromium, network_namespace
from support.in_process import invoke_stage
from support.stage import stage_command

pytestmark = [pytest.mark.browser, pytest.mark.realdata, pytest.mark.slow]

#: strokes of each digit, in fractions of the canvas (x right, y down)
STROKES: dict[str, list[list[tuple[float, float]]]] = {
    "1": [[(0.53, 0.15), (0.50, 0.50), (0.47, 0.85)]],
    "0": [
        [
            (
                0.5 + 0.22 * math.sin(t / 24 * 2 * math.pi),
                0.5 - 0.33 * math.cos(t / 24 * 2 * math.pi),
            )
            for t in range(25)
        ]
    ],
    "7": [[(0.27, 0.2), (0.73, 0.2), (0.45, 0.85)]],
    "2": [
        [
            *(
                (0.5 - 0.2 * math.cos(a), 0.34 - 0.17 * math.sin(a))
                for a in (math.pi * k / 10 for k in range(0, 13))
            ),
            (0.28, 0.8),
            (0.75, 0.8),
        ]
    ],
}


def answers_at_least(n: int) -> str:
    """JavaScript: whether the page has shown ``n`` answers and is not reading another."""
    return (
        "(() => { const a = document.getElementById('answer');"
        f" return Number(a.dataset.answers) >= {n} && a.dataset.state === 'done'; }})()"
    )


PAGE_JS = """(() => {
  const canvas = document.getElementById("drawing");
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let inked = 0;
  for (let i = 0; i < pixels.length; i += 4) if (pixels[i] < 128) inked += 1;
  const bars = [...document.querySelectorAll("#bars li")].map((li) => ({
    name: li.dataset.class, top: li.classList.contains("top"),
    drawn: li.querySelector(".fill").getBoundingClientRect().width
      / li.querySelector(".track").getBoundingClientRect().width}));
  const hint = document.getElementById("hint").getBoundingClientRect();
  return {inked, bars, reading: document.getElementById("reading").textContent,
          confidence: document.getElementById("confidence").textContent,
          status: document.getElementById("status").textContent,
          state: document.getElementById("answer").dataset.state,
          answers: Number(document.getElementById("answer").dataset.answers),
          seen: document.getElementById("seen").naturalWidth,
          hint_shown: hint.width > 0 && hint.height > 0};
})()"""


def rect(browser: Chromium, selector: str) -> dict[str, float]:
    return browser.evaluate(
        f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
        ".getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height}; })()"
    )


def centre(box: dict[str, float]) -> tuple[float, float]:
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def draw(browser: Chromium, digit: str, pause: float = 0.0) -> None:
    """Draw ``digit``'s strokes on the canvas with the mouse, each segment in 8 moves."""
    box = rect(browser, "#drawing")
    for stroke in STROKES[digit]:
        points = []
        for (x0, y0), (x1, y1) in itertools.pairwise(stroke):
            points += [(x0 + (x1 - x0) * i / 8, y0 + (y1 - y0) * i / 8) for i in range(8)]
        points.append(stroke[-1])
        page = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in points]
        browser.mouse_stroke(page, pause)


def answered(browser: Chromium, after: int) -> dict[str, Any]:
    """The page once more than ``after`` answers have come back; the last one shown."""
    assert browser.wait_for(answers_at_least(after + 1), timeout=20), browser.recorded()
    return browser.evaluate(PAGE_JS)


def is_local(url: str) -> bool:
    """A request that stays on this machine: inline data, or 127.0.0.1."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.scheme == "http" and parts.hostname == "127.0.0.1"


@pytest.fixture(scope="module")
def chromium() -> str:
    executable = find_chromium()
    if executable is None:
        message = "Debian's chromium is not installed (.ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return executable


@pytest.fixture(scope="module")
def page(
    chromium: str, real_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Chromium, str]]:
    """The page open in the browser, its server beside it; (browser, the page's address)."""
    profile = tmp_path_factory.mktemp("browser") / "profile"
    server = stage_command("serve", "--port", "0", "--model", str(real_model))
    with Chromium(chromium, profile, network_namespace(), companion=server) as browser:
        assert browser.companion is not None
        url = browser.companion.wait_for(r"serving (http://\S+) ").group(1)
        browser.visit(url)
        assert browser.wait_for("document.querySelectorAll('#bars li').length === 10")
        yield browser, url


def test_drawn_digits_read_as_drawn(page: tuple[Chromium, str], tmp_path: Path) -> None:
    browser, _ = page
    clear = centre(rect(browser, "#clear"))
    for digit in ("1", "0", "7"):
        browser.click(*clear)
        before = browser.evaluate(PAGE_JS)
        assert before["inked"] == 0
        draw(browser, digit)
        shown = answered(browser, before["answers"])
        assert shown["reading"] == digit, (digit, shown)
        assert shown["inked"] > 1000
        assert shown["seen"] == 28  # the picture the model saw, 28x28
        tops = [bar["name"] for bar in shown["bars"] if bar["top"]]
        assert tops == [digit]
        # The bars as drawn: the top one as long as the probability the page states.
        (top,) = [bar for bar in shown["bars"] if bar["top"]]
        stated = float(shown["confidence"].split()[-1].rstrip("%")) / 100
        assert top["drawn"] == pytest.approx(stated, abs=0.01)
        assert sum(bar["drawn"] for bar in shown["bars"]) == pytest.approx(1, abs=0.02)
        assert not shown["hint_shown"]
        assert [bar["name"] for bar in shown["bars"]] == [str(k) for k in range(10)]


def test_the_answer_updates_while_drawing(page: tuple[Chromium, str]) -> None:
    """A slow stroke is read before the button is released; the Read button reads again."""
    browser, _ = page
    browser.click(*centre(rect(browser, "#clear")))
    before = browser.evaluate(PAGE_JS)["answers"]
    box = rect(browser, "#drawing")
    x = box["x"] + box["width"] / 2
    points = [(x, box["y"] + box["height"] * (0.15 + 0.7 * i / 30)) for i in range(31)]
    browser.mouse("mouseMoved", *points[0])
    browser.mouse("mousePressed", *points[0])
    for point in points[1:]:
        browser.mouse("mouseMoved", *point, pressed=True)
    assert browser.wait_for(answers_at_least(before + 1), timeout=10)
    browser.mouse("mouseReleased", *points[-1])
    during = answered(browser, before)
    browser.click(*centre(rect(browser, "#read")))
    again = answered(browser, during["answers"])
    assert again["reading"] == "1"


def test_clear_empties_the_canvas_and_the_answer(page: tuple[Chromium, str]) -> None:
    browser, _ = page
    draw(browser, "7")
    assert browser.evaluate(PAGE_JS)["inked"] > 0
    browser.click(*centre(rect(browser, "#clear")))
    shown = browser.evaluate(PAGE_JS)
    assert shown["inked"] == 0
    assert shown["reading"] == "\u2013"  # an en dash: nothing read
    assert shown["state"] == "idle"
    assert shown["seen"] == 1  # the one black pixel shown when nothing was read
    assert {bar["drawn"] for bar in shown["bars"]} == {0}
    assert shown["hint_shown"]
    # Escape on the focused canvas clears it too.
    draw(browser, "1")
    browser.evaluate("document.getElementById('drawing').focus()")
    browser.key("Escape")
    assert browser.evaluate(PAGE_JS)["inked"] == 0


def predict_json(model: Path, picture: Path) -> dict[str, Any]:
    result = invoke_stage("predict", picture.parent, picture.name, "--model", str(model), "--json")
    assert result.returncode == 0, result.stderr
    (answer,) = json.loads(result.stdout)
    return answer


@pytest.mark.parametrize("how", ["chosen", "dropped"])
def test_a_picture_file_reads_as_predict_reads_it(
    page: tuple[Chromium, str], real_model: Path, how: str
) -> None:
    browser, _ = page
    picture = REPO / "docs" / "predict" / ("photo-4.jpg" if how == "chosen" else "photo-7.jpg")
    expected = predict_json(real_model, picture)
    before = browser.evaluate(PAGE_JS)["answers"]
    if how == "chosen":
        browser.choose_file("#file", picture)
    else:
        browser.drop_file(*centre(rect(browser, "#drawing")), picture)
    shown = answered(browser, before)
    assert shown["reading"] == expected["prediction"] == picture.stem[-1]
    assert shown["confidence"] == f"with probability {100 * expected['confidence']:.1f}%"
    assert shown["inked"] > 0  # the picture is shown on the canvas


def test_no_request_leaves_the_machine(page: tuple[Chromium, str], tmp_path: Path) -> None:
    """Run last in this module: every request the page made, and the screenshot."""
    browser, url = page
    browser.click(*centre(rect(browser, "#clear")))
    before = browser.evaluate(PAGE_JS)["answers"]
    draw(browser, "2")
    shown = answered(browser, before)
    if target := os.environ.get("SERVE_SCREENSHOT"):
        box = rect(browser, "main")
        browser.screenshot(Path(target), {**box, "height": box["height"] + 20})
    visit = browser.recorded()
    assert [request for request in visit.requests if not is_local(request)] == []
    assert url in visit.requests
    assert url + "model" in visit.requests
    assert sum(request.startswith(url + "predict?") for request in visit.requests) >= 8
    assert visit.exceptions == []
    assert visit.console_errors == []
    assert shown["state"] == "done"
