"""Per-turn latency metrics: computed from the marks a turn's stages leave, logged, exported.

Each stage marks when things happened in a turn (``PipelineContext.mark``): the last voiced
audio arrived (``speech_ended``), the turn was declared over (``turn_ended``), recognition
started and ended, the agent started and sent its first text, synthesis started and gave
its first audio, the first reply audio went out. ``turn_metrics`` turns those into the
five figures the issue names (seconds):

- ``vad_stop_delay``: end of speech -> end of turn declared (mostly the silence timeout),
- ``stt``: recognition time after the turn ended,
- ``agent_ttft``: agent start -> first text,
- ``tts_ttfb``: synthesis start -> first audio of the reply,
- ``end_of_speech_to_first_audio``: end of speech -> first reply audio sent.

``SessionMetrics`` exports them as Prometheus histograms on its own registry (so tests and
several services in one process do not collide), with gauges and counters for sessions,
and the errors of each of the service's surfaces, each counted once, by code, in a counter
of its own: a session's error events (``voice_session_errors_total``, over the WebSocket
or WebRTC), ``/v1/synthesize/ws``'s error events (``voice_synthesize_ws_errors_total``),
the refused WebRTC offers (``voice_webrtc_offer_errors_total``, HTTP errors) and the refused
backend listings (``voice_backends_list_errors_total``, HTTP errors). Counters
of their own rather than a label on the first: its series keep their meaning (and their
one label), and each surface is alerted on by its own name.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

TURN_FIGURES: dict[str, tuple[str, str]] = {
    "vad_stop_delay": ("speech_ended", "turn_ended"),
    "stt": ("stt_started", "stt_ended"),
    "agent_ttft": ("agent_started", "agent_first_token"),
    "tts_ttfb": ("tts_started", "tts_first_byte"),
    "end_of_speech_to_first_audio": ("speech_ended", "first_audio"),
}
_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.3, 1.6, 2.0, 3.0, 5.0, 10.0)


def turn_metrics(marks: dict[str, float]) -> dict[str, float]:
    """Return the figures (seconds) whose start and end marks are both present."""
    figures: dict[str, float] = {}
    for name, (start, end) in TURN_FIGURES.items():
        if start in marks and end in marks:
            figures[name] = max(0.0, marks[end] - marks[start])
    return figures


class SessionMetrics:
    """The service's Prometheus metrics."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.turn_seconds = {
            name: Histogram(
                f"voice_session_{name}_seconds",
                f"Per-turn {name.replace('_', ' ')} in seconds",
                registry=self.registry,
                buckets=_BUCKETS,
            )
            for name in TURN_FIGURES
        }
        self.active_sessions = Gauge(
            "voice_sessions_active", "Sessions running on this instance", registry=self.registry
        )
        self.sessions_total = Counter(
            "voice_sessions",
            "Sessions started on this instance, by how they began",
            ["start"],
            registry=self.registry,
        )
        self.sessions_refused = Counter(
            "voice_sessions_refused",
            "Session starts refused, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.turns_total = Counter(
            "voice_session_turns",
            "User turns, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.sessions_closed = Counter(
            "voice_sessions_closed",
            "Sessions closed on this instance, by close code (none: the client left)",
            ["code"],
            registry=self.registry,
        )
        self.errors_total = Counter(
            "voice_session_errors",
            "Error events sent to sessions' clients, by code",
            ["code"],
            registry=self.registry,
        )
        self.synthesize_ws_errors = Counter(
            "voice_synthesize_ws_errors",
            "Error events sent on /v1/synthesize/ws, by code",
            ["code"],
            registry=self.registry,
        )
        self.webrtc_offer_errors = Counter(
            "voice_webrtc_offer_errors",
            "WebRTC offers refused (POST /v1/sessions/webrtc), by the error body's code",
            ["code"],
            registry=self.registry,
        )
        self.backends_list_errors = Counter(
            "voice_backends_list_errors",
            "Backend listings refused (GET /v1/backends), by the error body's code",
            ["code"],
            registry=self.registry,
        )

    def observe_turn(self, figures: dict[str, float], *, interrupted: bool) -> None:
        """Record one turn's figures."""
        for name, value in figures.items():
            self.turn_seconds[name].observe(value)
        self.turns_total.labels("interrupted" if interrupted else "completed").inc()

    def exposition(self) -> bytes:
        """Return the metrics in the Prometheus text format."""
        return generate_latest(self.registry)
