// Playground: text or dialogue turns in, audio out, with the words highlighted as they play
// and the request's cache hit, latency and cost.

import { poll } from "../api.js";
import { fetchAudioFile, playBlob } from "../audio/clip.js";
import { field, format, h, replace, select, uid } from "../dom.js";
import { followPlayback } from "../highlight.js";

export const title = "Playground";

const FORMATS = [["mp3", "MP3"], ["wav", "WAV"], ["ogg_opus", "Ogg Opus"], ["flac", "FLAC"]];
const GRANULARITY = [["both", "words and syllables"], ["word", "words"], ["syllable", "syllables"]];
const SAMPLE_TEXT = "The quick brown fox jumps over the lazy dog, then naps beside the river.";

function slider(label, name, min, max, step, value) {
  const input = h("input", { type: "range", name, min, max, step, value: String(value) });
  const output = h("output", { for: null }, String(value));
  input.addEventListener("input", () => {
    output.value = input.value;
  });
  const [wrapper] = field(label, input);
  wrapper.append(output);
  return [wrapper, input];
}

export async function render(root, app, params) {
  const abort = new AbortController();
  let stopFollowing = () => {};
  const voiceList = h("datalist", { id: uid("voices") });

  const textMode = h("input", { type: "radio", name: "mode", id: "mode-text", value: "text", checked: true });
  const dialogueMode = h("input", { type: "radio", name: "mode", id: "mode-dialogue", value: "dialogue" });
  const [textField, text] = field("Text", h("textarea", { id: "synth-text", rows: 4, maxlength: 5000 }));
  text.value = SAMPLE_TEXT;
  const [voiceField, voice] = field(
    "Voice",
    h("input", { id: "synth-voice", list: voiceList.id, value: params.get("voice") || "en-US", autocomplete: "off" }),
    "A catalog voice (provider:id), an OpenAI name, a language tag, or one of your voice model ids; empty: your active model",
  );
  const turns = h("ol", { class: "turns", id: "dialogue-turns" });
  const [pauseField, pause] = field("Pause between turns (ms)", h("input", { type: "number", min: 0, max: 10000, value: "300" }));
  const [formatField, formatSelect] = field("Format", select(FORMATS, { id: "synth-format", value: "mp3" }));
  const [granularityField, granularity] = field("Timestamps", select(GRANULARITY, { value: "both" }));
  const [speedField, speed] = slider("Speed", "speed", 0.5, 2, 0.05, 1);
  const [pitchField, pitch] = slider("Pitch", "pitch", 0.5, 2, 0.05, 1);
  const [volumeField, volume] = slider("Volume", "volume", 0, 2, 0.05, 1);
  const submit = h("button", { type: "submit", id: "synthesize" }, "Synthesize");
  const audio = h("audio", { controls: true, id: "synth-audio", preload: "auto" });
  const metrics = h("dl", { class: "metrics", id: "synth-metrics" });
  const transcript = h("div", { class: "transcript", id: "transcript", "aria-label": "Transcript following playback" });
  const status = h("p", { id: "synth-status", role: "status" });

  function addTurn(speaker = "", turnVoice = "", turnText = "") {
    const n = turns.children.length + 1;
    const [speakerField] = field(`Speaker ${n}`, h("input", { name: "speaker", value: speaker, required: true, maxlength: 100 }));
    const [turnVoiceField] = field(`Voice ${n}`, h("input", { name: "voice", value: turnVoice, list: voiceList.id, required: true }));
    const [turnTextField] = field(`Text ${n}`, h("input", { name: "text", value: turnText, required: true, class: "wide" }));
    const item = h("li", { class: "turn" }, speakerField, turnVoiceField, turnTextField,
      h("button", { type: "button", class: "link", onclick: () => item.remove(), "aria-label": `Remove turn ${n}` }, "Remove"));
    turns.append(item);
  }
  addTurn("Ann", "espeak:en-US", "Hi Bob, how was the trip?");
  addTurn("Bob", "espeak:en", "Long, but the view was worth it."); // eSpeak's British English

  const dialogueBox = h("fieldset", { class: "dialogue", hidden: true },
    h("legend", {}, "Dialogue turns"), turns,
    h("button", { type: "button", onclick: () => addTurn() }, "Add a turn"), pauseField);
  const textBox = h("div", {}, textField, voiceField);
  const switchMode = () => {
    dialogueBox.hidden = !dialogueMode.checked;
    textBox.hidden = dialogueMode.checked;
  };
  textMode.addEventListener("change", switchMode);
  dialogueMode.addEventListener("change", switchMode);

  function showMetrics(result, ms) {
    const rows = [
      ["Cache", result.cacheHit ? "hit" : "miss"],
      ["Latency", `${format.ms(ms)} (request to answer)`],
      ["Cost", `${format.dollars(result.cost ?? null)}${result.billedCharacters !== null && result.billedCharacters !== undefined ? ` (${result.billedCharacters} characters billed)` : ""}`],
      ["Voice", `${result.voice} (${result.provider})`],
      ["Audio", `${format.seconds(result.duration)}, ${result.format}, ${result.sampleRate || "?"} Hz, ${format.bytes(result.size)}`],
    ];
    if (result.unapplied?.length) rows.push(["Not applied", result.unapplied.join(", ")]);
    if (result.fallbackReason) rows.push(["Mode", `${result.mode}: ${result.fallbackReason}`]);
    replace(metrics, rows.map(([k, v]) => [h("dt", {}, k), h("dd", { dataset: { metric: k.toLowerCase() } }, v)]));
    metrics.dataset.cacheHit = String(Boolean(result.cacheHit));
  }

  async function synthesize() {
    submit.disabled = true;
    stopFollowing();
    replace(status, "Synthesizing…");
    const options = {
      outputFormat: formatSelect.value,
      speed: Number(speed.value),
      pitch: Number(pitch.value),
      volume: Number(volume.value),
      timestampGranularity: granularity.value,
    };
    try {
      let answer;
      if (dialogueMode.checked) {
        const body = {
          ...options,
          pauseMs: Number(pause.value || 0),
          turns: [...turns.children].map((li) => ({
            speaker: li.querySelector("[name=speaker]").value.trim(),
            voice: li.querySelector("[name=voice]").value.trim(),
            text: li.querySelector("[name=text]").value.trim(),
          })),
        };
        answer = await app.api.post("/synthesize/dialogue", body);
      } else {
        const body = { ...options, text: text.value };
        if (voice.value.trim()) body.voice = voice.value.trim();
        answer = await app.api.post("/synthesize", body);
      }
      let result = answer.data;
      if (answer.status === 202) {
        replace(status, "A long text: waiting for the job…");
        result = await poll(async () => {
          const job = (await app.api.get(`/synthesis/jobs/${encodeURIComponent(result.jobId)}`)).data;
          replace(status, `Job ${job.status}, ${Math.round((job.progress || 0) * 100)} %`);
          return job.status === "completed" || job.status === "failed" ? job : null;
        }, { signal: abort.signal });
        if (!result) return;
      }
      if (result.status === "failed") throw new Error(result.error || "The synthesis failed");
      showMetrics(result, answer.ms);
      const blob = await fetchAudioFile(app.api, result.audioFileId);
      stopFollowing = followPlayback(transcript, audio, result.timestamps);
      replace(status, `Playing ${result.voice}.`);
      await playBlob(audio, blob);
    } catch (error) {
      replace(status, "");
      app.fail(error);
    } finally {
      submit.disabled = false;
    }
  }

  root.append(
    h("form", {
      class: "playground",
      id: "playground-form",
      onsubmit: (event) => {
        event.preventDefault();
        synthesize();
      },
    },
    h("fieldset", { class: "inline-choices" }, h("legend", {}, "Input"),
      textMode, h("label", { for: "mode-text" }, "Text"), " ",
      dialogueMode, h("label", { for: "mode-dialogue" }, "Dialogue")),
    textBox, dialogueBox,
    h("fieldset", { class: "controls" }, h("legend", {}, "Audio"),
      formatField, granularityField, speedField, pitchField, volumeField),
    submit, voiceList),
    status,
    h("section", { "aria-labelledby": "result-title", class: "result" },
      h("h3", { id: "result-title" }, "Result"), audio, transcript, metrics),
  );

  // Suggestions for the voice fields: your models first, then catalog voices.
  Promise.all([
    app.api.get("/voice-models", { limit: 100 }).catch(() => ({ data: { models: [] } })),
    app.api.get("/voices", { sort: "name", limit: 100, language: "en" }).catch(() => ({ data: { voices: [] } })),
  ]).then(([models, voices]) => {
    for (const m of models.data.models) voiceList.append(h("option", { value: m.id }, `your model ${m.name || m.id}`));
    for (const v of voices.data.voices) voiceList.append(h("option", { value: v.id }, v.displayName));
  });

  return () => {
    abort.abort();
    stopFollowing();
    audio.pause();
  };
}
