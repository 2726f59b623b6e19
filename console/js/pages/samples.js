// Samples and training: waits for the samples capability (see the README).

import { h } from "../dom.js";

export const title = "Samples and training";

export async function render(root) {
  root.append(h("p", {}, "Voice samples and training are not available in this build yet."));
}
