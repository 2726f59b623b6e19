// Live session: the microphone streamed to the session WebSocket (at this origin), live
// transcripts and agent replies, reply audio played as it arrives and flushed on barge-in,
// and each turn's latency.

import { PcmPlayer } from "../audio/player.js";
import { stackedBars } from "../charts.js";
import { field, format, h, replace, table } from "../dom.js";

export const title = "Live session";

const INPUT_RATE = 16000;
const OUTPUT_RATE = 24000;
const STAGES = [
  ["vadStopDelayMs", "end of speech detected"],
  ["sttMs", "speech to text"],
  ["agentTtftMs", "agent first text"],
  ["ttsTtfbMs", "first audio"],
];

function sessionUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

export async function render(root, app) {
  let socket = null;
  let context = null;
  let microphone = null;
  let player = null;
  let started = false;
  let outputRate = OUTPUT_RATE;
  const turns = new Map(); // turn number -> {user, agent} list items
  const metrics = [];

  const [voiceField, voice] = field("Voice", h("input", { id: "live-voice", placeholder: "your active model", autocomplete: "off" }),
    "Empty: your active voice model, else the default voice");
  const agents = h("datalist", { id: "live-agents" }, ["local", "webhook", "openai"].map((name) => h("option", { value: name })));
  const [agentField, agent] = field("Agent", h("input", { id: "live-agent", list: "live-agents", placeholder: "local", autocomplete: "off" }),
    "local (embedded rules), or webhook / openai where the service enables them");
  const [silenceField, silence] = field("Silence that ends a turn (s)", h("input", { id: "live-silence", type: "number", min: 0.2, max: 3, step: 0.1, value: "0.5" }));
  const startButton = h("button", { type: "button", id: "live-start" }, "Start talking");
  const stopButton = h("button", { type: "button", id: "live-stop", disabled: true }, "Stop");
  const state = h("p", { id: "live-state", role: "status", dataset: { state: "idle" } }, "Not connected");
  const conversation = h("ol", { id: "conversation", class: "conversation", "aria-live": "polite" });
  const replyAudio = h("p", { id: "reply-audio", dataset: { samples: "0", chunks: "0" } }, "No reply audio yet.");
  const chartBox = h("div", { id: "latency-chart" });
  const figures = h("div", { id: "latency-figures" });
  const log = h("ol", { id: "live-events", class: "events" });

  function note(text) {
    log.prepend(h("li", {}, `${new Date().toLocaleTimeString()} ${text}`));
    while (log.children.length > 50) log.lastChild.remove();
  }

  function setState(value, label) {
    state.dataset.state = value;
    replace(state, label || value);
  }

  function turn(n) {
    if (!turns.has(n)) {
      const user = h("li", { class: "user", dataset: { turn: String(n) } }, h("strong", {}, "You: "), h("span", { class: "text partial" }, "…"));
      const agent = h("li", { class: "agent", dataset: { turn: String(n) }, hidden: true }, h("strong", {}, "Agent: "), h("span", { class: "text" }, ""));
      conversation.append(user, agent);
      turns.set(n, { user, agent });
    }
    return turns.get(n);
  }

  function drawMetrics() {
    const rows = metrics.map((m) => ({
      label: `turn ${m.turn}${m.interrupted ? " (cut)" : ""}`,
      parts: STAGES.filter(([key]) => typeof m[key] === "number").map(([key, name]) => ({ name, value: m[key] })),
      total: m.endOfSpeechToFirstAudioMs ?? undefined,
    }));
    replace(chartBox, stackedBars({ title: "Per-turn latency: end of speech to first reply audio, by stage", rows }));
    replace(figures, table(
      [
        { label: "Turn", cell: (m) => String(m.turn) },
        ...STAGES.map(([key, name]) => ({ label: name, cell: (m) => format.ms(m[key]) })),
        { label: "End of speech → first audio", cell: (m) => format.ms(m.endOfSpeechToFirstAudioMs) },
      ],
      metrics,
      { class: "data", id: "latency-table" },
    ));
  }

  function onEvent(event) {
    switch (event.type) {
      case "session.started":
        started = true;
        note(`session ${event.sessionId} started with ${event.voice || "the default voice"}`);
        root.dataset.sessionId = event.sessionId;
        break;
      case "state":
        setState(event.state, {
          listening: "Listening…",
          processing: "Thinking…",
          speaking: "Speaking (talk to interrupt)",
          idle: "Idle",
        }[event.state] || event.state);
        break;
      case "transcript.partial":
      case "transcript.final": {
        const span = turn(event.turn).user.querySelector(".text");
        span.textContent = event.text || "(nothing recognised)";
        span.classList.toggle("partial", event.type === "transcript.partial");
        if (event.type === "transcript.final") span.parentElement.dataset.final = "true";
        break;
      }
      case "agent.text":
      case "agent.done": {
        const { agent } = turn(event.turn);
        agent.hidden = false;
        const span = agent.querySelector(".text");
        span.textContent = event.type === "agent.done" ? event.text : span.textContent + event.text;
        if (event.type === "agent.done") agent.dataset.final = "true";
        break;
      }
      case "audio.started":
        outputRate = event.sampleRate || outputRate;
        break;
      case "audio.ended":
        if (event.interrupted) turn(event.turn).agent.append(h("em", { class: "cut" }, " (interrupted)"));
        break;
      case "interruption":
        replyAudio.dataset.flushed = String(Number(replyAudio.dataset.flushed || 0) + (player?.flush() || 0));
        note("you barged in: reply audio flushed");
        replyAudio.dataset.interruptions = String(Number(replyAudio.dataset.interruptions || 0) + 1);
        break;
      case "turn.metrics":
        metrics.push(event);
        drawMetrics();
        break;
      case "error":
        note(`error ${event.code}: ${event.message}`);
        if (event.fatal) app.toast(`Session error ${event.code}: ${event.message}`, { error: true });
        break;
      case "session.ended":
        note(`session ended: ${event.reason}`);
        break;
      default:
        break;
    }
  }

  function onAudio(data) {
    player.enqueue(data, outputRate);
    replyAudio.dataset.samples = String(player.receivedSamples);
    replyAudio.dataset.chunks = String(Number(replyAudio.dataset.chunks) + 1);
    replace(replyAudio, `Reply audio received: ${(player.receivedSamples / outputRate).toFixed(1)} s`);
  }

  async function start() {
    startButton.disabled = true;
    try {
      context = new AudioContext();
      await context.resume();
      player = new PcmPlayer(context);
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      await context.audioWorklet.addModule("/console/js/audio/capture-worklet.js");
      const source = context.createMediaStreamSource(stream);
      const capture = new AudioWorkletNode(context, "pcm-capture", {
        processorOptions: { targetRate: INPUT_RATE, frameMs: 20 },
      });
      source.connect(capture);
      microphone = { stream, source, capture };

      socket = new WebSocket(sessionUrl(app.config.sessionsPath), ["voice-session", `bearer.${app.token}`]);
      socket.binaryType = "arraybuffer";
      socket.addEventListener("open", () => {
        setState("connecting", "Connected, starting the session…");
        const config = {
          audio: { sampleRate: INPUT_RATE, outputSampleRate: OUTPUT_RATE },
          turn: { silenceTimeoutSeconds: Number(silence.value) || 0.5 },
        };
        if (voice.value.trim()) config.voice = voice.value.trim();
        if (agent.value.trim()) config.agent = { name: agent.value.trim() };
        socket.send(JSON.stringify({ type: "start", config }));
      });
      socket.addEventListener("message", (message) => {
        if (typeof message.data === "string") onEvent(JSON.parse(message.data));
        else onAudio(message.data);
      });
      socket.addEventListener("close", (event) => {
        note(`connection closed (${event.code}${event.reason ? `: ${event.reason}` : ""})`);
        if (event.code === 4001) app.toast("The session refused the token: sign in again.", { error: true });
        stop(false);
      });
      capture.port.onmessage = (message) => {
        if (started && socket?.readyState === WebSocket.OPEN) socket.send(message.data);
      };
      stopButton.disabled = false;
      setState("connecting", "Connecting…");
    } catch (error) {
      app.fail(error);
      stop(false);
    }
  }

  function stop(sendStop = true) {
    if (socket && socket.readyState === WebSocket.OPEN && sendStop && started) {
      socket.send(JSON.stringify({ type: "stop" }));
    }
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
    socket = null;
    started = false;
    if (microphone) {
      microphone.capture.port.onmessage = null;
      microphone.source.disconnect();
      microphone.stream.getTracks().forEach((track) => track.stop());
      microphone = null;
    }
    const closing = context;
    context = null;
    if (closing) setTimeout(() => closing.close().catch(() => {}), player?.playing ? 3000 : 0);
    startButton.disabled = false;
    stopButton.disabled = true;
    setState("idle", "Not connected");
  }

  startButton.addEventListener("click", start);
  stopButton.addEventListener("click", () => stop(true));

  root.append(
    h("p", {}, "Talk to a voice session through your microphone. The reply plays as it arrives; speak over it to interrupt (barge-in). Headphones keep the reply out of the microphone."),
    h("div", { class: "controls-row" }, voiceField, agentField, agents, silenceField, startButton, stopButton),
    state,
    h("section", { "aria-labelledby": "conversation-title" }, h("h3", { id: "conversation-title" }, "Conversation"), conversation, replyAudio),
    h("section", { "aria-labelledby": "latency-title" }, h("h3", { id: "latency-title" }, "Latency per turn"), chartBox, figures),
    h("details", {}, h("summary", {}, "Session events"), log),
  );
  return () => stop(true);
}
