"""No log line the platform writes during the tests holds a secret.

A logging handler on the root logger formats every record as production does
(``CloudLoggingFormatter``: message, structured fields and traceback) and looks for the
secrets the tests hand the platform: bearer tokens (every token here is a JWT), the
signatures of signed URLs (a signed URL is a credential until it expires) and the fake
providers' API keys. At the end of the session each finding is reported as an error.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field

from shared.log import CloudLoggingFormatter
from tests.support.fake_tts_servers import AZURE_KEY, ELEVENLABS_KEY, OPENAI_KEY

SECRETS = {
    "a bearer token": re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}"),
    "a signed URL's signature": re.compile(r"signature=[0-9a-fA-F]{32,}"),
    "a provider API key": re.compile(
        "|".join(map(re.escape, (ELEVENLABS_KEY, AZURE_KEY, OPENAI_KEY)))
    ),
}


@dataclass
class SecretRecorder(logging.Handler):
    """Collects the log lines that hold a secret: (what, logger, the line's start)."""

    found: list[tuple[str, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        logging.Handler.__init__(self, logging.NOTSET)
        self.setFormatter(CloudLoggingFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a record that cannot be formatted holds nothing to find
            return
        for what, pattern in SECRETS.items():
            match = pattern.search(line)
            if match:
                start = max(0, match.start() - 150)
                with self.lock:
                    self.found.append((what, record.name, line[start : match.end() + 50]))

    def __hash__(self) -> int:
        return id(self)
