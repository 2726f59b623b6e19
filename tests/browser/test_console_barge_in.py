"""Barge-in in the console: talking over the agent's reply cuts it off and drops its audio.

The fake microphone asks for a story, stays silent while the (webhook) agent starts
telling a long one, then says "stop, please stop" over it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import microphone_file
from tests.browser.test_console import sign_in

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def microphone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return microphone_file(
        tmp_path_factory.mktemp("barge-in-microphone"),
        1.0,
        "tell-me-a-long-story.en-US.16000.flac",
        6.0,  # the story starts within this silence (about 1 s after it begins)
        "stop-please-stop.en-US.16000.flac",
        8.0,
    )


def test_talking_over_the_reply_interrupts_it(page, gateway):
    sign_in(page, gateway, "flo")
    page.goto(f"{gateway.base}/console#/live")
    page.fill("#live-agent", "webhook")
    page.click("#live-start")
    story = page.locator("#conversation li.agent[data-turn='1']")
    story.wait_for(state="attached", timeout=45_000)
    page.wait_for_function(
        "() => Number(document.getElementById('reply-audio').dataset.interruptions) >= 1",
        timeout=45_000,
    )
    reply_audio = page.locator("#reply-audio")
    # What was queued of the story was dropped at once, and the story is marked cut.
    assert int(reply_audio.get_attribute("data-flushed")) >= 1
    page.locator("#conversation li.agent[data-turn='1'] .cut").wait_for()
    assert "Chapter 1" in story.inner_text()
    # The interruption is a turn of its own, answered in turn.
    interrupting = page.locator("#conversation li.user[data-turn='2'][data-final]")
    interrupting.wait_for(timeout=30_000)
    assert "stop" in interrupting.inner_text().lower()
    answer = page.locator("#conversation li.agent[data-turn='2'][data-final]")
    answer.wait_for(timeout=30_000)
    assert "You interrupted me" in answer.inner_text()
    page.click("#live-stop")
