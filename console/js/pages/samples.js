// Samples and training: record a take from the microphone or upload a file, see its quality
// score and the nearest voices among your samples and the public ones, then train a voice
// model from ready samples and watch it complete.

import { poll } from "../api.js";
import { wavBlob } from "../audio/wav.js";
import { field, format, h, replace, select, table } from "../dom.js";
import { schemaEnum } from "../openapi.js";

export const title = "Samples and training";

const RECORD_RATE = 24000;
const MIN_SECONDS = 3;
const SETTLED = new Set(["ready", "failed"]);
const TRAINED = new Set(["completed", "failed"]);

function qualityText(sample) {
  if (sample.qualityScore === null || sample.qualityScore === undefined) return "—";
  return `${sample.qualityScore.toFixed(1)} / 10`;
}

export async function render(root, app) {
  const abort = new AbortController();
  let recorder = null;
  const listBox = h("div", { id: "samples-list", "aria-live": "polite" }, "Loading…");
  const detailBox = h("div", { id: "sample-detail", "aria-live": "polite" });
  const trainBox = h("div", { id: "training", "aria-live": "polite" });
  const recordStatus = h("p", { id: "record-status", role: "status" });

  const [nameField, name] = field("Name", h("input", { id: "sample-name", maxlength: 255, value: "Take 1" }));
  const [languageField, language] = field("Language", h("input", { id: "sample-language", value: "en-US", maxlength: 35 }));
  const isPublic = h("input", { type: "checkbox", id: "sample-public" });
  const [fileField, file] = field("Audio file", h("input", { type: "file", id: "sample-file", accept: "audio/wav,audio/x-wav,audio/flac,audio/mpeg,audio/ogg,.wav,.flac,.mp3,.ogg" }),
    "wav, mp3, flac or ogg; 3 s to 10 minutes");
  const recordButton = h("button", { type: "button", id: "record" }, "● Record");
  const uploadButton = h("button", { type: "button", id: "upload" }, "Upload the file");

  function metadata() {
    return { name: name.value.trim() || "Sample", language: language.value.trim() || "en-US", isPublic: isPublic.checked };
  }

  async function send(blob, filename) {
    const form = new FormData();
    form.append("file", blob, filename);
    const meta = metadata();
    form.append("name", meta.name);
    form.append("language", meta.language);
    form.append("isPublic", meta.isPublic ? "true" : "false");
    const { data } = await app.api.upload("POST", "/samples", form);
    app.toast(`Uploaded ${data.name}: processing…`);
    await load();
    await follow(data.id);
  }

  /** Poll one sample until it is processed, then show its report and nearest voices. */
  async function follow(sampleId) {
    replace(detailBox, h("p", {}, "Processing the sample…"));
    const sample = await poll(async () => {
      const { data } = await app.api.get(`/samples/${encodeURIComponent(sampleId)}`);
      return SETTLED.has(data.status) ? data : null;
    }, { everyMs: 500, signal: abort.signal });
    if (!sample) return;
    await load();
    await showSample(sample);
  }

  async function showSample(sample) {
    const quality = sample.quality || {};
    const parts = [
      h("h4", {}, sample.name),
      h("dl", { class: "metrics", id: "sample-report", dataset: { status: sample.status } },
        [
          ["Status", sample.status + (sample.failureReason ? `: ${sample.failureReason}` : "")],
          ["Quality score", qualityText(sample)],
          ["Usable", quality.usable === undefined ? "—" : quality.usable ? "yes" : "no"],
          ["Problems", (quality.problems || []).join(", ") || "none"],
          ["Signal to noise", quality.snrDb === undefined ? "—" : `${quality.snrDb.toFixed(1)} dB`],
          ["Silence", quality.silenceRatio === undefined ? "—" : `${Math.round(quality.silenceRatio * 100)} %`],
          ["Bandwidth", quality.bandwidthHz === undefined ? "—" : `${Math.round(quality.bandwidthHz)} Hz`],
          ["Duration", format.seconds(sample.duration)],
          ["Format", `${sample.format || "?"}, ${sample.sampleRate || "?"} Hz, ${sample.channels || "?"} channel(s), ${format.bytes(sample.sizeBytes)}`],
          ["Pitch (median)", sample.prosody?.f0MedianHz ? `${Math.round(sample.prosody.f0MedianHz)} Hz` : "—"],
          ["Speaking rate", sample.prosody ? `${sample.prosody.syllablesPerSecond.toFixed(1)} syllables/s` : "—"],
        ].map(([k, v]) => [h("dt", {}, k), h("dd", { dataset: { metric: k.toLowerCase() } }, v)])),
    ];
    replace(detailBox, parts);
    if (sample.status !== "ready") return;
    const similar = h("div", { id: "similar" }, "Finding the nearest voices…");
    detailBox.append(h("h4", {}, "Most similar voices"), similar);
    try {
      const [own, shared] = await Promise.all(
        ["own", "public"].map((scope) =>
          app.api.get(`/samples/${encodeURIComponent(sample.id)}/similar`, { scope, limit: 5 }).then((r) => r.data.similar)),
      );
      const rows = [
        ...own.map((s) => ({ ...s, scope: "yours" })),
        ...shared.filter((s) => s.sample.userId !== app.userId).map((s) => ({ ...s, scope: "public" })),
      ].sort((a, b) => b.similarity - a.similarity);
      replace(similar, rows.length
        ? table([
          { label: "Sample", cell: (s) => s.sample.name },
          { label: "Whose", cell: (s) => (s.scope === "yours" ? "yours" : `public (${s.sample.userId})`) },
          { label: "Similarity", cell: (s) => s.similarity.toFixed(3) },
          { label: "Quality", cell: (s) => qualityText(s.sample) },
        ], rows, { class: "data", id: "similar-table" })
        : h("p", { class: "hint" }, "No other sample to compare with yet: upload more, or mark some public."));
    } catch (error) {
      replace(similar, "");
      app.fail(error);
    }
  }

  async function startRecording() {
    const context = new AudioContext();
    await context.resume();
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    await context.audioWorklet.addModule("/console/js/audio/capture-worklet.js");
    const source = context.createMediaStreamSource(stream);
    const capture = new AudioWorkletNode(context, "pcm-capture", { processorOptions: { targetRate: RECORD_RATE, frameMs: 20 } });
    const frames = [];
    const started = performance.now();
    capture.port.onmessage = (message) => frames.push(message.data);
    source.connect(capture);
    const timer = setInterval(() => {
      replace(recordStatus, `Recording… ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }, 200);
    recorder = {
      frames,
      async stop() {
        clearInterval(timer);
        capture.port.onmessage = null;
        source.disconnect();
        stream.getTracks().forEach((track) => track.stop());
        await context.close();
        return frames.length * 0.02;
      },
    };
    recordButton.textContent = "■ Stop and upload";
    recordButton.setAttribute("aria-pressed", "true");
  }

  async function toggleRecording() {
    try {
      if (!recorder) {
        await startRecording();
        return;
      }
      const take = recorder;
      recorder = null;
      recordButton.textContent = "● Record";
      recordButton.setAttribute("aria-pressed", "false");
      const seconds = await take.stop();
      if (seconds < MIN_SECONDS) {
        replace(recordStatus, `Only ${seconds.toFixed(1)} s: a sample needs at least ${MIN_SECONDS} s.`);
        return;
      }
      replace(recordStatus, `Recorded ${seconds.toFixed(1)} s; uploading…`);
      await send(wavBlob(take.frames, RECORD_RATE), "recording.wav");
      replace(recordStatus, "");
    } catch (error) {
      app.fail(error);
    }
  }

  async function uploadFile() {
    const chosen = file.files[0];
    if (!chosen) {
      app.toast("Choose an audio file first.", { error: true });
      return;
    }
    uploadButton.disabled = true;
    try {
      await send(chosen, chosen.name);
    } catch (error) {
      app.fail(error);
    } finally {
      uploadButton.disabled = false;
    }
  }

  async function remove(sample) {
    try {
      await app.api.delete(`/samples/${encodeURIComponent(sample.id)}`);
      app.toast(`Deleted ${sample.name}.`);
      await load();
    } catch (error) {
      app.fail(error);
    }
  }

  async function load() {
    const { data } = await app.api.get("/samples", { limit: 50 });
    replace(listBox, data.samples.length
      ? table([
        {
          label: "Train",
          cell: (s) => h("input", { type: "checkbox", name: "train", value: s.id, disabled: s.status !== "ready", "aria-label": `Train with ${s.name}` }),
        },
        { label: "Sample", cell: (s) => [h("strong", {}, s.name), h("br"), h("code", {}, s.id)] },
        { label: "Status", cell: (s) => h("span", { class: `status ${s.status}` }, s.status) },
        { label: "Quality", cell: (s) => qualityText(s) },
        { label: "Duration", cell: (s) => format.seconds(s.duration) },
        { label: "Language", cell: (s) => s.language },
        { label: "Public", cell: (s) => (s.isPublic ? "yes" : "no") },
        {
          label: "",
          cell: (s) => [
            h("button", { type: "button", onclick: () => showSample(s), "aria-label": `Details of ${s.name}` }, "Details"), " ",
            h("button", { type: "button", class: "link", onclick: () => remove(s), "aria-label": `Delete ${s.name}` }, "Delete"),
          ],
        },
      ], data.samples, { class: "data", id: "samples-table" })
      : h("p", {}, "No samples yet: record or upload one above."));
  }

  async function train(modelName, provider) {
    const ids = [...listBox.querySelectorAll("input[name=train]:checked")].map((c) => c.value);
    if (!ids.length) {
      app.toast("Tick at least one ready sample to train with.", { error: true });
      return;
    }
    try {
      const { data: pending } = await app.api.post("/voice-models/train", {
        sampleIds: ids,
        provider,
        name: modelName || null,
      });
      const started = performance.now();
      const progress = h("p", { id: "training-status", dataset: { status: pending.status } }, `Training ${pending.name || pending.id}: ${pending.status}`);
      replace(trainBox, progress);
      const model = await poll(async () => {
        const { data } = await app.api.get(`/voice-models/${encodeURIComponent(pending.id)}`);
        progress.dataset.status = data.status;
        replace(progress, `Training ${data.name || data.id}: ${data.status} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
        return TRAINED.has(data.status) ? data : null;
      }, { everyMs: 1000, signal: abort.signal });
      if (!model) return;
      const meta = model.metadata || {};
      trainBox.append(h("dl", { class: "metrics", id: "trained-model" },
        [
          ["Model", model.id],
          ["Status", model.status],
          ["Quality", format.score(model.qualityScore)],
          ["Similarity to the samples", format.score(model.similarity)],
          ["Voice", meta.voiceId ? `${meta.voiceId} (pitch ${meta.pitch ?? 1}, speed ${meta.speed ?? 1})` : "—"],
          ["Active", model.isActive ? "yes" : "no"],
        ].map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
        model.status === "completed"
          ? h("p", {}, h("a", { href: `#/playground?voice=${encodeURIComponent(model.id)}` }, "Try it in the playground"))
          : null);
    } catch (error) {
      app.fail(error);
    }
  }

  const providers = await schemaEnum("TTSProvider");
  const [modelNameField, modelName] = field("Model name", h("input", { id: "model-name", maxlength: 255, value: "My voice" }));
  const [trainerField, trainer] = field("Provider", select(providers.length ? providers : ["espeak"], { value: "espeak", id: "train-provider" }),
    "espeak: the embedded voice match (the nearest eSpeak voice, tuned); elevenlabs: a clone where configured");

  recordButton.addEventListener("click", toggleRecording);
  uploadButton.addEventListener("click", uploadFile);
  root.append(
    h("section", { "aria-labelledby": "new-sample-title" },
      h("h3", { id: "new-sample-title" }, "New sample"),
      h("div", { class: "controls-row" }, nameField, languageField,
        h("div", { class: "field inline" }, isPublic, h("label", { for: "sample-public" }, "Public (others may find it similar)"))),
      h("div", { class: "controls-row" }, recordButton, h("span", { class: "hint" }, `at least ${MIN_SECONDS} s`)),
      recordStatus,
      h("div", { class: "controls-row" }, fileField, uploadButton)),
    h("section", { "aria-labelledby": "samples-title" }, h("h3", { id: "samples-title" }, "Your samples"), listBox, detailBox),
    h("section", { "aria-labelledby": "train-title" },
      h("h3", { id: "train-title" }, "Train a voice model"),
      h("form", {
        id: "train-form",
        class: "controls-row",
        onsubmit: (event) => {
          event.preventDefault();
          train(modelName.value.trim(), trainer.value);
        },
      }, modelNameField, trainerField, h("button", { type: "submit" }, "Train from the ticked samples")),
      trainBox),
  );
  await load();
  return () => {
    abort.abort();
    recorder?.stop();
  };
}
