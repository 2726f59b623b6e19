"""Audio that arrives from a provider in pieces, turned into the PCM a caller asked for.

HTTP bodies arrive in pieces of any size; ``pcm_stream`` yields whole 16-bit samples,
resampled incrementally (soxr's ``ResampleStream``, the quality ``shared.audio.pcm.resample``
uses, so the pieces joined match the non-streamed audio within resampling tolerance) and
scaled to the request's volume, as each piece comes. ``http_body`` reads a streamed
``requests`` response and turns a connection that breaks off into a transient
``ProviderError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import requests
import soxr  # type: ignore[import-untyped]  # no type hints shipped

from shared.audio.pcm import scale_volume
from shared.providers.base import ErrorCategory, ProviderError, provider_error


def pcm_stream(
    pieces: Iterable[bytes],
    *,
    from_rate: int,
    to_rate: int,
    volume: float = 1.0,
    malformed: Callable[[str], ProviderError],
) -> Iterator[bytes]:
    """Yield ``pieces`` (16-bit mono PCM at ``from_rate``) as PCM at ``to_rate`` and ``volume``.

    Raises:
        ProviderError: the audio ends in half a sample (``malformed``), or reading failed.
    """
    resampler = (
        soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16", quality="HQ")
        if from_rate != to_rate
        else None
    )
    carry = b""
    for piece in pieces:
        data = carry + piece
        whole = len(data) - len(data) % 2
        carry = data[whole:]
        if whole:
            converted = _convert(data[:whole], resampler, volume, last=False)
            if converted:
                yield converted
    if carry:
        raise malformed("audio is not 16-bit PCM")
    if resampler is not None:
        tail = _convert(b"", resampler, volume, last=True)
        if tail:
            yield tail


def _convert(
    pcm: bytes, resampler: soxr.ResampleStream | None, volume: float, *, last: bool
) -> bytes:
    if resampler is not None:
        samples = np.frombuffer(pcm, dtype="<i2")
        pcm = np.asarray(resampler.resample_chunk(samples, last=last), dtype="<i2").tobytes()
    return scale_volume(pcm, volume)


def http_body(response: requests.Response, provider: str) -> Iterator[bytes]:
    """Yield the body of a streamed response as it arrives, then close the response.

    Raises:
        ProviderError: the connection broke off or timed out mid-body (transient).
    """
    try:
        # chunk_size None: each piece as the network delivers it, never waiting to fill one.
        for chunk in response.iter_content(chunk_size=None):
            if chunk:
                yield chunk
    except requests.RequestException as exc:
        raise provider_error(
            provider, ErrorCategory.TRANSIENT, f"{provider} broke off the audio stream"
        ) from exc
    finally:
        response.close()
