// Playing audio the API returns: fetched with the bearer token, played from a blob: URL
// (same origin; the CSP allows media from 'self' and blob: only).

let current = null;

/** Play `blob` in `audio` (an <audio> element), releasing the previous clip's URL. */
export function playBlob(audio, blob, { autoplay = true } = {}) {
  if (current) URL.revokeObjectURL(current);
  current = URL.createObjectURL(blob);
  audio.src = current;
  if (autoplay) {
    return audio.play().catch(() => {
      // Autoplay may be refused until the user interacts: the controls are there.
    });
  }
  return Promise.resolve();
}

/** Fetch one of the caller's audio files (GET /files/audio/{id}) as a blob. */
export async function fetchAudioFile(api, fileId) {
  const { blob } = await api.blob(`/files/audio/${encodeURIComponent(fileId)}`, { accept: "audio/*" });
  return blob;
}

/** Synthesize `text` with `voice` and return the audio itself (Accept: audio/mpeg). */
export async function speak(api, voice, text) {
  const { blob } = await api.blob("/synthesize", {
    method: "POST",
    accept: "audio/mpeg",
    body: { text, voice, outputFormat: "mp3", includeTimestamps: false },
  });
  return blob;
}
