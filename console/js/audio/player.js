// Reply audio of a session: 16-bit PCM chunks scheduled back to back on an AudioContext,
// and flushed at once when the user barges in.

export class PcmPlayer {
  constructor(context) {
    this.context = context;
    this.sources = new Set();
    this.nextTime = 0;
    this.receivedSamples = 0;
  }

  /** Queue one chunk of little-endian PCM16 (an ArrayBuffer) at `rate` Hz. */
  enqueue(data, rate) {
    const view = new DataView(data);
    const count = Math.floor(data.byteLength / 2);
    if (!count) return;
    const buffer = this.context.createBuffer(1, count, rate);
    const samples = buffer.getChannelData(0);
    for (let i = 0; i < count; i += 1) samples[i] = view.getInt16(i * 2, true) / 32768;
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    const at = Math.max(this.context.currentTime + 0.03, this.nextTime);
    source.start(at);
    this.nextTime = at + buffer.duration;
    this.sources.add(source);
    source.addEventListener("ended", () => this.sources.delete(source));
    this.receivedSamples += count;
  }

  /** Whether reply audio is still playing. */
  get playing() {
    return this.sources.size > 0;
  }

  /** Drop everything not yet played (barge-in); return how many chunks were cut. */
  flush() {
    const cut = this.sources.size;
    for (const source of this.sources) {
      try {
        source.stop();
      } catch {
        // already stopped
      }
    }
    this.sources.clear();
    this.nextTime = 0;
    return cut;
  }
}
