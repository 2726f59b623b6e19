"""The developer console, used as a person would: in Chromium, against ``make run``'s gateway."""

from __future__ import annotations

import json
import urllib.request
from array import array

import pytest

from tests.support.voice_samples import sample_file

pytestmark = pytest.mark.timeout(120)

# Samples the playback clock and the highlighted word every 40 ms until the audio ends.
SAMPLE_PLAYBACK = """
async () => {
  const audio = document.getElementById("synth-audio");
  const transcript = document.getElementById("transcript");
  const starts = [...transcript.querySelectorAll(".word")].map((w) => Number(w.dataset.start));
  const samples = [];
  // audio.ended turns true before the "ended" event's handlers run (the console's clears
  // the highlight): wait for them too (registered after the console's, so run after it).
  const endedEvent = new Promise((resolve) => {
    audio.addEventListener("ended", resolve, { once: true });
  });
  const deadline = performance.now() + 20000;
  while (!audio.ended && performance.now() < deadline) {
    if (!audio.paused) {
      samples.push({ t: audio.currentTime, word: Number(transcript.dataset.currentWord) });
    }
    await new Promise((resolve) => setTimeout(resolve, 40));
  }
  await Promise.race([endedEvent, new Promise((resolve) => setTimeout(resolve, 2000))]);
  return { starts, samples, ended: audio.ended, duration: audio.duration,
           after: Number(transcript.dataset.currentWord) };
}
"""


def download(gateway, url: str, token: str) -> bytes:
    """Return the bytes at ``url`` (a file the console played), fetched as its owner."""
    assert url.startswith(gateway.base)
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only
        return bytes(response.read())


def peak(wav: bytes) -> int:
    """Return the largest sample magnitude of a 16-bit PCM WAV (after its 44-byte header)."""
    return max(abs(sample) for sample in array("h", wav[44:]))


def sign_in(page, gateway, user: str, *, admin: bool = False) -> None:
    page.goto(f"{gateway.base}/console")
    page.fill("#dev-sign-in input[name=userId]", user)
    if admin:
        page.check("#dev-admin")
    page.click("#dev-sign-in button[type=submit]")
    page.wait_for_selector("#signed-in-as")
    assert page.inner_text("#signed-in-as") == f"Signed in as {user}"


def api(gateway, method: str, path: str, token: str, body: object = None) -> object:
    request = urllib.request.Request(  # noqa: S310 - loopback only
        f"{gateway.base}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


def test_sign_in_and_explore_the_catalog(page, gateway, voice_table):
    page.goto(f"{gateway.base}/console#/voices")
    # Nothing but the sign-in forms until there is a token.
    assert page.locator("#voices-table").count() == 0
    sign_in(page, gateway, "ada")
    page.wait_for_selector("#voices-table tbody tr")
    assert page.locator("#voices-table tbody tr").count() == 50
    espeak = page.locator("#providers-table tbody tr", has_text="espeak")
    assert int(espeak.locator("td").nth(1).inner_text()) > 300
    # Filters go to the API: only British English voices are left.
    page.fill("#voice-filters input[name=language]", "en-GB")
    page.select_option("#voice-filters select[name=gender]", "female")
    page.click("#voice-filters button[type=submit]")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#voices-table tbody tr')].every((tr) =>"
        " tr.cells[1].textContent === 'en-GB' && tr.cells[2].textContent === 'female')"
    )
    assert page.locator("#voices-table tbody tr").count() > 0
    # A sample plays through the same-origin, token-authenticated synthesis.
    page.locator("#voices-table tbody tr").first.get_by_role("button").click()
    page.wait_for_function(
        "() => { const a = document.getElementById('voice-sample-audio');"
        " return a.src.startsWith('blob:') && a.currentTime > 0; }"
    )
    # Admins see the sync button; this user is not one.
    assert page.locator("#sync-now").count() == 0


def test_every_catalog_filter_goes_to_the_api_and_providers_show_their_last_sync(page, gateway):
    from urllib.parse import parse_qs, urlsplit

    token = gateway.token("flo")
    providers = api(gateway, "GET", "/voices/providers", token)["providers"]
    synced = {p["name"]: p for p in providers if p["lastSyncedAt"]}
    assert "espeak" in synced
    # An age group eSpeak's catalog has, found through the API rather than assumed.
    age = next(
        group
        for group in ("child", "young", "adult", "senior")
        if api(gateway, "GET", f"/voices?provider=espeak&ageGroup={group}&limit=1", token)["voices"]
    )
    sign_in(page, gateway, "flo")
    page.wait_for_selector("#providers-table tbody tr")
    row = page.locator("#providers-table tbody tr", has_text="espeak")
    headers = page.locator("#providers-table thead th").all_inner_texts()
    last_sync = row.locator("td").nth(headers.index("Last sync")).inner_text()
    assert last_sync not in ("", "—")
    assert row.locator("td").nth(headers.index("Last job")).inner_text() == "completed"

    filters = "#voice-filters"
    page.select_option(f"{filters} select[name=provider]", "espeak")
    page.select_option(f"{filters} select[name=ageGroup]", age)
    with page.expect_request(lambda r: "/voices?" in r.url and "ageGroup" in r.url) as sent:
        page.click(f"{filters} button[type=submit]")
    query = parse_qs(urlsplit(sent.value.url).query)
    assert (query["provider"], query["ageGroup"]) == (["espeak"], [age])
    page.wait_for_function(
        "(age) => { const rows = [...document.querySelectorAll('#voices-table tbody tr')];"
        " return rows.length > 0 && rows.every((tr) =>"
        " tr.cells[0].textContent.includes('espeak:') && tr.cells[3].textContent === age); }",
        arg=age,
    )
    # Style, use case and deprecated voices: sent as given; no embedded voice has this style.
    page.fill(f"{filters} input[name=style]", "newscast")
    page.fill(f"{filters} input[name=useCase]", "audiobook")
    page.check("#include-deprecated")
    with page.expect_request(lambda r: "/voices?" in r.url and "style" in r.url) as sent:
        page.click(f"{filters} button[type=submit]")
    query = parse_qs(urlsplit(sent.value.url).query)
    assert (query["style"], query["useCase"], query["includeDeprecated"]) == (
        ["newscast"],
        ["audiobook"],
        ["true"],
    )
    page.wait_for_selector("text=No voice matches these filters.")


def test_an_admin_runs_a_sync_and_watches_it_finish(page, gateway):
    sign_in(page, gateway, "root", admin=True)
    page.wait_for_selector("#providers-table")
    page.click("#sync-now")
    page.wait_for_selector("#sync-jobs .status.completed")
    assert "completed" in page.inner_text("#sync-jobs")


def test_the_highlighted_word_follows_playback(page, gateway):
    sign_in(page, gateway, "bea")
    page.goto(f"{gateway.base}/console#/playground")
    text = "One two three four five six seven eight nine ten eleven twelve."
    page.fill("#synth-text", text)
    page.fill("#synth-voice", "espeak:en-US")
    page.click("#synthesize")
    page.wait_for_selector("#words .word")
    assert page.inner_text("#words").split() == text.rstrip(".").split()
    result = page.evaluate(SAMPLE_PLAYBACK)
    starts, samples = result["starts"], result["samples"]
    assert result["ended"], "the audio did not play to its end"
    assert len(samples) > 20
    # The highlighted word is the one being spoken: the last to have started by then.
    lag = 0.1  # one animation frame plus the sampling interval, with room for a busy CI
    for sample in samples:
        word, t = sample["word"], sample["t"]
        if word >= 0:
            assert starts[word] <= t + lag
        if word + 1 < len(starts):
            assert starts[word + 1] > t - lag, sample
    words_seen = [s["word"] for s in samples]
    assert words_seen == sorted(words_seen), "the highlight went backwards"
    assert len(set(words_seen) - {-1}) >= 10, "the highlight did not advance word by word"
    assert result["after"] == -1  # cleared once the audio ended
    assert page.locator("#syllables .syllable").count() >= len(starts)
    metrics = page.locator("#synth-metrics")
    assert metrics.get_attribute("data-cache-hit") == "false"
    assert "ms" in metrics.locator("[data-metric=latency]").inner_text()
    assert metrics.locator("[data-metric=cost]").inner_text().startswith("$0.000000")

    page.click("#synthesize")  # the same request again: served from the cache
    page.wait_for_function(
        "() => document.getElementById('synth-metrics').dataset.cacheHit === 'true'"
    )
    assert "0 characters billed" in page.inner_text("[data-metric=cost]")


def test_a_dialogue_of_the_default_turns_plays_with_the_chosen_format_and_prosody(page, gateway):
    sign_in(page, gateway, "dora")
    token = gateway.token("dora")
    page.goto(f"{gateway.base}/console#/playground")
    page.check("#mode-dialogue")
    turns = page.locator("#dialogue-turns li")
    assert turns.count() == 2
    voices = [turns.nth(i).locator("[name=voice]").input_value() for i in range(2)]
    # The default voices are catalog voices, and two different ones.
    for voice in voices:
        assert api(gateway, "GET", f"/voices/{voice}", token)["id"].lower() == voice.lower()
    assert len({voice.lower() for voice in voices}) == 2
    page.select_option("#synth-format", "wav")
    page.locator("input[name=speed]").fill("1.5")
    page.locator("input[name=pitch]").fill("0.8")
    with page.expect_request("**/synthesize/dialogue") as sent:
        page.click("#synthesize")
    body = sent.value.post_data_json
    assert [turn["voice"] for turn in body["turns"]] == voices
    assert (body["outputFormat"], body["speed"], body["pitch"]) == ("wav", 1.5, 0.8)
    page.wait_for_function(
        "() => document.getElementById('synth-status').textContent.startsWith('Playing')"
    )
    assert "wav" in page.inner_text("#synth-metrics [data-metric=audio]")
    page.wait_for_function(
        "() => { const a = document.getElementById('synth-audio');"
        " return a.src.startsWith('blob:') && a.currentTime > 0; }"
    )
    spoken = page.inner_text("#words")
    assert spoken.index("Ann:") < spoken.index("Hi Bob") < spoken.index("Bob:")
    assert spoken.index("Bob:") < spoken.index("worth it")


def test_voice_models_activate_compare_and_back_up(page, gateway):
    token = gateway.token("cleo")
    ids = [
        api(
            gateway,
            "POST",
            "/voice-models",
            token,
            {
                "name": name,
                "provider": "espeak",
                "modelPath": f"models/cleo/{name}/model.bin",
                "qualityScore": score,
                "metadata": {"voiceId": voice},
            },
        )["id"]
        for name, score, voice in [("warm", 0.7, "en-us+f3"), ("bright", 0.6, "en-gb")]
    ]
    sign_in(page, gateway, "cleo")
    page.goto(f"{gateway.base}/console#/models")
    page.wait_for_selector("#models-table")
    page.get_by_role("button", name="Activate bright").click()
    page.wait_for_function(
        "(id) => [...document.querySelectorAll('#models-table tbody tr')].some((tr) =>"
        " tr.textContent.includes(id) && tr.querySelector('[data-active]'))",
        arg=ids[1],
    )
    active = api(gateway, "GET", "/voice-models/user/me/active", token)
    assert active["model"]["id"] == ids[1]

    for model_id in ids:
        page.check(f"#models-table input[value='{model_id}']")
    page.click("#compare-selected")
    page.wait_for_selector("#compare-table")
    assert page.locator("#compare-table thead th").count() == 3
    assert page.locator("#analytics .chart").count() >= 2

    page.click("#backup-now")
    page.wait_for_selector("#backups-table tbody tr")
    backup_path = page.locator("#backups-table tbody tr code").first.inner_text()
    page.fill("#restore-path", backup_path)
    page.click("#restore-overwrite")
    page.click("form.restore button[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('restore-result').textContent.startsWith('Restored 2')"
    )


def test_a_live_session_hears_the_microphone_and_answers(page, gateway):
    sign_in(page, gateway, "dora")
    page.goto(f"{gateway.base}/console#/live")
    page.click("#live-start")
    user_turn = page.locator("#conversation li.user[data-final]").first
    user_turn.wait_for(timeout=45_000)
    assert "weather" in user_turn.inner_text().lower()
    agent_turn = page.locator("#conversation li.agent[data-final]").first
    agent_turn.wait_for(timeout=30_000)
    assert agent_turn.inner_text().startswith("Agent: ")
    assert len(agent_turn.inner_text()) > len("Agent: ") + 3
    # Reply audio arrives and plays: more than half a second of it at 24 kHz.
    page.wait_for_function(
        "() => Number(document.getElementById('reply-audio').dataset.samples) > 12000"
    )
    page.wait_for_selector("#latency-table tbody tr")
    assert page.locator("#latency-chart svg").count() == 1
    page.click("#live-stop")
    page.wait_for_function("() => document.getElementById('live-state').dataset.state === 'idle'")


@pytest.mark.timeout(300)  # waits for the voice-match table, once per test process
def test_samples_recorded_and_uploaded_then_trained_into_a_voice(
    page, gateway, voice_table, tmp_path
):
    take = tmp_path / "take.wav"
    take.write_bytes(sample_file("en-US+f2", 1))
    sign_in(page, gateway, "erin")
    page.goto(f"{gateway.base}/console#/samples")
    page.wait_for_selector("#samples-list")
    # Upload a file: processed, with its quality score.
    page.fill("#sample-name", "Uploaded take")
    page.set_input_files("#sample-file", str(take))
    page.click("#upload")
    page.wait_for_selector("#sample-report[data-status=ready]", timeout=60_000)
    score = page.locator("[data-metric='quality score']").inner_text()
    assert score.endswith("/ 10")
    assert 0 < float(score.split("/")[0]) <= 10
    # Record from the microphone (the fake device speaks the question, then silence).
    page.fill("#sample-name", "Microphone take")
    page.click("#record")
    page.wait_for_function(
        "() => /Recording… [4-9]/.test(document.getElementById('record-status').textContent)"
    )
    page.click("#record")
    page.locator("#sample-detail h4", has_text="Microphone take").wait_for(timeout=60_000)
    page.wait_for_selector("#sample-report[data-status=ready]")
    assert page.locator("#samples-table tbody tr").count() == 2
    # The nearest voices: the other sample of this user is listed with its similarity.
    page.locator("#samples-table tbody tr", has_text="Uploaded take").get_by_role(
        "button", name="Details of Uploaded take"
    ).click()
    page.locator("#sample-detail h4", has_text="Uploaded take").wait_for()
    page.wait_for_selector("#similar-table tbody tr")
    assert "Microphone take" in page.inner_text("#similar-table")
    # Train from the uploaded sample and watch the model complete.
    voice_table.join(timeout=240)
    page.check("#samples-table input[aria-label='Train with Uploaded take']")
    page.fill("#model-name", "Erin's voice")
    page.click("#train-form button[type=submit]")
    page.wait_for_selector("#training-status[data-status=completed]", timeout=90_000)
    assert "en-us" in page.inner_text("#trained-model").lower()


def test_the_volume_slider_and_the_timestamp_choice_reach_the_api_and_the_transcript(page, gateway):
    sign_in(page, gateway, "vic")
    token = gateway.token("vic")
    page.goto(f"{gateway.base}/console#/playground")
    text = "Seven quiet words are spoken here now."
    page.fill("#synth-text", text)
    page.fill("#synth-voice", "espeak:en-US")
    page.select_option("#synth-format", "wav")
    volume = page.locator("input[name=volume]")
    volume.fill("0.45")
    assert volume.locator("xpath=following-sibling::output").inner_text() == "0.45"
    choice = page.get_by_label("Timestamps")
    spoken = text.rstrip(".").split()

    choice.select_option("word")
    with (
        page.expect_request("**/synthesize") as sent,
        page.expect_response("**/files/audio/*") as played,
    ):
        page.click("#synthesize")
    body = sent.value.post_data_json
    assert (body["volume"], body["timestampGranularity"]) == (0.45, "word")
    page.wait_for_selector("#words .word")
    assert page.inner_text("#words").split() == spoken
    assert page.locator("#syllables .syllable").count() == 0
    quiet = peak(download(gateway, played.value.url, token))

    choice.select_option("syllable")
    with page.expect_request("**/synthesize") as sent:
        page.click("#synthesize")
    assert sent.value.post_data_json["timestampGranularity"] == "syllable"
    page.wait_for_selector("#syllables .syllable")
    assert page.locator("#words .word").count() == 0

    # One syllable at least per word ("seven", "quiet" have two each).
    assert page.locator("#syllables .syllable").count() >= len(spoken) + 2

    choice.select_option("both")
    volume.fill("1")
    with (
        page.expect_request("**/synthesize") as sent,
        page.expect_response("**/files/audio/*") as played,
    ):
        page.click("#synthesize")
    assert sent.value.post_data_json["timestampGranularity"] == "both"
    assert sent.value.post_data_json["volume"] == 1
    page.wait_for_function(
        "() => document.querySelectorAll('#words .word').length > 0"
        " && document.querySelectorAll('#syllables .syllable').length > 0"
    )
    assert page.inner_text("#words").split() == spoken
    # The first audio played was this one at 0.45: the same speech, its peak scaled (the
    # engine applies the volume itself, so not to the sample: 0.42-0.45 x seen).
    loud = peak(download(gateway, played.value.url, token))
    assert loud > 10_000
    assert quiet == pytest.approx(0.45 * loud, rel=0.15)


def test_the_voices_table_pages_with_more_until_the_catalog_ends(page, gateway):
    from urllib.parse import parse_qs, urlsplit

    token = gateway.token("mo")
    expected, cursor = [], None
    while True:  # the whole catalog, as the API pages it (name order, as the console asks)
        query = f"/voices?sort=name&limit=50{f'&cursor={cursor}' if cursor else ''}"
        answer = api(gateway, "GET", query, token)
        expected += [voice["id"] for voice in answer["voices"]]
        cursor = answer.get("nextCursor")
        if not cursor:
            break
    assert len(expected) > 50, "the catalog fits one page: nothing to page through"

    sign_in(page, gateway, "mo")
    page.wait_for_selector("#voices-table tbody tr")
    more = page.locator("button.more")
    assert more.inner_text() == "More (showing 50)"
    pages = 1
    while more.count():
        with page.expect_request(lambda r: "/voices?" in r.url and "cursor=" in r.url) as sent:
            more.click()
        assert parse_qs(urlsplit(sent.value.url).query)["cursor"][0]
        pages += 1
        shown = min(50 * pages, len(expected))
        page.wait_for_function(
            "(n) => document.querySelectorAll('#voices-table tbody tr').length === n", arg=shown
        )
    shown_ids = page.locator("#voices-table tbody tr td:first-child code").all_inner_texts()
    assert shown_ids == expected  # every voice once, in the API's order


FILTERED_ROWS = (
    "(age) => { const rows = [...document.querySelectorAll('#voices-table tbody tr')];"
    " return rows.length > 0 && rows.every((tr) =>"
    " tr.cells[0].textContent.includes('espeak:') && tr.cells[3].textContent === age); }"
)


def test_a_slow_first_list_does_not_replace_the_filtered_one_asked_after_it(page, gateway):
    # The page lists the catalog as it opens; a filter submitted before that answer comes
    # back must win: the late, unfiltered answer is stale, not the table's new content.
    token = gateway.token("lou")
    age = next(
        group
        for group in ("child", "young", "adult", "senior")
        if api(gateway, "GET", f"/voices?provider=espeak&ageGroup={group}&limit=1", token)["voices"]
    )
    held = []  # every unfiltered list the page asks for (signing in renders it anew)

    def hold_unfiltered_lists(route):
        if "/voices?" in route.request.url and "ageGroup" not in route.request.url:
            held.append(route)  # answered below, once the filtered list is shown
        else:
            route.continue_()

    page.route("**/voices?*", hold_unfiltered_lists)
    sign_in(page, gateway, "lou")
    page.wait_for_selector(
        "#voice-filters select[name=provider] option[value=espeak]", state="attached"
    )
    page.select_option("#voice-filters select[name=provider]", "espeak")
    page.select_option("#voice-filters select[name=ageGroup]", age)
    page.click("#voice-filters button[type=submit]")
    page.wait_for_function(FILTERED_ROWS, arg=age)
    assert held, "the page asked for no unfiltered list to hold back"

    for route in held:
        with page.expect_response(lambda r, route=route: r.request == route.request):
            route.continue_()
    page.wait_for_timeout(300)  # the late answers' handlers have run by now

    assert page.evaluate(FILTERED_ROWS, age)


def test_more_clicked_twice_adds_its_page_once(page, gateway):
    sign_in(page, gateway, "max")
    page.wait_for_selector("#voices-table tbody tr")
    more = page.locator("button.more")
    assert more.inner_text() == "More (showing 50)"

    more.dblclick()  # the second click lands before the first page comes back
    page.wait_for_function("() => document.querySelectorAll('#voices-table tbody tr').length > 50")
    page.wait_for_timeout(500)  # a second page, had it been asked for, has come back by now

    ids = page.locator("#voices-table tbody tr td:first-child code").all_inner_texts()
    assert len(ids) == len(set(ids)) == 100
