// Word and syllable highlighting in time with playback, from the synthesis timestamps.

import { h } from "./dom.js";

/**
 * Return the index of the last item that has started at `time` (items sorted by start),
 * or -1 before the first. Gaps between words keep the word just spoken highlighted.
 */
export function indexAt(items, time) {
  let low = 0;
  let high = items.length - 1;
  let found = -1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    if (items[mid].start <= time) {
      found = mid;
      low = mid + 1;
    } else {
      high = mid - 1;
    }
  }
  return found;
}

/**
 * Render the words (and their syllables) of `timestamps` into `container` and follow
 * `audio`: the word and syllable being spoken carry the class "current" and
 * aria-current. Returns a function that stops following.
 */
export function followPlayback(container, audio, timestamps) {
  const words = timestamps?.words || [];
  const syllables = timestamps?.syllables || [];
  const wordEls = words.map((w, i) =>
    h("span", { class: "word", dataset: { index: String(i), start: w.start.toFixed(3) } }, w.text),
  );
  const syllableEls = syllables.map((s, i) =>
    h("span", { class: "syllable", dataset: { index: String(i), word: String(s.wordIndex) } }, s.text),
  );
  const wordLine = h("p", { class: "words", id: "words", "aria-label": "Words" });
  wordEls.forEach((el, i) => {
    // A dialogue's words name their speaker: label each change of speaker.
    if (words[i].speaker && words[i].speaker !== words[i - 1]?.speaker) {
      wordLine.append(i ? h("br") : "", h("strong", { class: "speaker" }, `${words[i].speaker}: `));
    }
    wordLine.append(el, i < wordEls.length - 1 ? " " : "");
  });
  const syllableLine = h("p", { class: "syllables", id: "syllables", "aria-label": "Syllables" });
  syllableEls.forEach((el, i) => {
    const nextWord = syllables[i + 1]?.wordIndex;
    syllableLine.append(el, i < syllableEls.length - 1 ? (nextWord === syllables[i].wordIndex ? "·" : " ") : "");
  });
  container.replaceChildren(wordLine, syllables.length ? syllableLine : "");
  container.dataset.currentWord = "-1";
  container.dataset.currentSyllable = "-1";

  let frame = 0;
  let wordIndex = -1;
  let syllableIndex = -1;
  const mark = (els, previous, next) => {
    if (previous === next) return next;
    if (els[previous]) {
      els[previous].classList.remove("current");
      els[previous].removeAttribute("aria-current");
    }
    if (els[next]) {
      els[next].classList.add("current");
      els[next].setAttribute("aria-current", "true");
    }
    return next;
  };
  const update = () => {
    const t = audio.currentTime;
    const ended = audio.ended;
    wordIndex = mark(wordEls, wordIndex, ended ? -1 : indexAt(words, t));
    syllableIndex = mark(syllableEls, syllableIndex, ended ? -1 : indexAt(syllables, t));
    container.dataset.currentWord = String(wordIndex);
    container.dataset.currentSyllable = String(syllableIndex);
  };
  const loop = () => {
    update();
    frame = requestAnimationFrame(loop);
  };
  const start = () => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(loop);
  };
  const pause = () => {
    cancelAnimationFrame(frame);
    update();
  };
  audio.addEventListener("play", start);
  audio.addEventListener("pause", pause);
  audio.addEventListener("ended", pause);
  audio.addEventListener("seeked", update);
  // Clicking a word plays from it.
  const seek = (event) => {
    const target = event.target.closest(".word");
    if (!target) return;
    audio.currentTime = words[Number(target.dataset.index)].start;
    audio.play().catch(() => {});
  };
  wordLine.addEventListener("click", seek);
  if (!audio.paused) start();
  return () => {
    cancelAnimationFrame(frame);
    audio.removeEventListener("play", start);
    audio.removeEventListener("pause", pause);
    audio.removeEventListener("ended", pause);
    audio.removeEventListener("seeked", update);
  };
}
