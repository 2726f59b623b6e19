// The microphone, resampled in the audio thread to the session's input rate and cut into
// 20 ms frames of 16-bit little-endian PCM, each posted to the page as an ArrayBuffer.
// A block without input (a muted or ended track) counts as silence: the session measures
// turn ends in audio time, so the stream must go on.

class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { targetRate = 16000, frameMs = 20 } = options.processorOptions || {};
    this.step = sampleRate / targetRate; // input samples per output sample
    this.frame = new Int16Array(Math.round((targetRate * frameMs) / 1000));
    this.filled = 0;
    this.position = 0; // where the next output sample lies, in input samples from this block
    this.previous = 0; // the last (smoothed) input sample of the block before
    // A moving average over about one output period keeps most aliasing out.
    this.window = new Float32Array(Math.max(1, Math.round(this.step)));
    this.windowAt = 0;
    this.windowSum = 0;
  }

  smooth(sample) {
    this.windowSum += sample - this.window[this.windowAt];
    this.window[this.windowAt] = sample;
    this.windowAt = (this.windowAt + 1) % this.window.length;
    return this.windowSum / this.window.length;
  }

  emit(value) {
    const clipped = Math.max(-1, Math.min(1, value));
    this.frame[this.filled] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
    this.filled += 1;
    if (this.filled === this.frame.length) {
      const out = this.frame.slice().buffer;
      this.port.postMessage(out, [out]);
      this.filled = 0;
    }
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    const length = channel ? channel.length : 128;
    const block = new Float32Array(length);
    for (let i = 0; i < length; i += 1) block[i] = this.smooth(channel ? channel[i] : 0);
    while (this.position < length) {
      // Between the sample before and this one (a constant one-sample delay): the one
      // before the block's first is the previous block's last.
      const index = Math.floor(this.position);
      const fraction = this.position - index;
      const before = index === 0 ? this.previous : block[index - 1];
      this.emit(before + (block[index] - before) * fraction);
      this.position += this.step;
    }
    this.position -= length;
    this.previous = block[length - 1];
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
