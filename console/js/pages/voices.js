// Voices: the provider catalog with its filters, sample playback, provider status and sync.

import { poll } from "../api.js";
import { playBlob, speak } from "../audio/clip.js";
import { field, format, h, replace, select, table } from "../dom.js";
import { schemaEnum } from "../openapi.js";

export const title = "Voices";

const FINAL_SYNC = new Set(["completed", "failed"]);

export async function render(root, app) {
  const abort = new AbortController();
  const player = h("audio", { controls: true, id: "voice-sample-audio", class: "sample-player" });
  const providersBox = h("div", { id: "providers", "aria-live": "polite" }, "Loading providers…");
  const results = h("div", { id: "voice-results", "aria-live": "polite" });
  const syncBox = h("div", { id: "sync-jobs", "aria-live": "polite" });
  let cursor = null;
  let searches = 0; // the latest search's number: an older one's late answer is stale

  const [genders, ageGroups] = await Promise.all([schemaEnum("Gender"), schemaEnum("AgeGroup")]);
  const [searchField, search] = field("Search", h("input", { type: "search", name: "search", placeholder: "english america" }));
  const provider = select([["", "any"]], { name: "provider" });
  const [providerField] = field("Provider", provider);
  const [languageField, language] = field("Language", h("input", { name: "language", placeholder: "en, en-GB" }));
  const [genderField, gender] = field("Gender", select([["", "any"], ...genders], { name: "gender" }));
  const [ageField, ageGroup] = field("Age group", select([["", "any"], ...ageGroups], { name: "ageGroup" }));
  const [styleField, style] = field("Style", h("input", { name: "style" }));
  const [useCaseField, useCase] = field("Use case", h("input", { name: "useCase" }));
  const deprecated = h("input", { type: "checkbox", id: "include-deprecated", name: "includeDeprecated" });

  async function playSample(voice, button) {
    button.disabled = true;
    try {
      const sentence = `Hello, this is ${voice.displayName}.`;
      await playBlob(player, await speak(app.api, voice.id, sentence));
    } catch (error) {
      app.fail(error);
    } finally {
      button.disabled = false;
    }
  }

  function voiceRows(voices) {
    return table(
      [
        { label: "Voice", cell: (v) => [h("strong", {}, v.displayName), h("br"), h("code", {}, v.id)] },
        { label: "Language", cell: (v) => v.language },
        { label: "Gender", cell: (v) => v.gender || "—" },
        { label: "Age group", cell: (v) => v.ageGroup || "—" },
        { label: "Styles", cell: (v) => (v.styles || []).join(", ") || "—" },
        { label: "Use cases", cell: (v) => (v.useCases || []).join(", ") || "—" },
        { label: "Status", cell: (v) => (v.isDeprecated ? h("span", { class: "badge warn" }, "deprecated") : "current") },
        {
          label: "Try",
          cell: (v) => {
            const play = h("button", { type: "button", "aria-label": `Play a sample of ${v.displayName}` }, "▶ Sample");
            play.addEventListener("click", () => playSample(v, play));
            return [play, " ", h("a", { href: `#/playground?voice=${encodeURIComponent(v.id)}` }, "Playground")];
          },
        },
      ],
      voices,
      { class: "data", id: "voices-table" },
    );
  }

  async function search_(more = false) {
    // "More" continues the current search; a new search makes every answer still on its way
    // (the first list, another filter, a page of "More") stale, so none lands over its rows.
    const mine = more ? searches : ++searches;
    try {
      const { data } = await app.api.get("/voices", {
        search: search.value.trim(),
        provider: provider.value,
        language: language.value.trim(),
        gender: gender.value,
        ageGroup: ageGroup.value,
        style: style.value.trim(),
        useCase: useCase.value.trim(),
        includeDeprecated: deprecated.checked ? "true" : "",
        sort: "name",
        limit: 50,
        cursor: more ? cursor : null,
      });
      if (mine !== searches) return;
      cursor = data.nextCursor;
      const rows = voiceRows(data.voices);
      if (more) {
        results.querySelector("tbody").append(...rows.querySelectorAll("tbody tr"));
      } else {
        replace(results, data.voices.length ? rows : h("p", {}, "No voice matches these filters."));
      }
      results.querySelector(".more")?.remove();
      const count = results.querySelectorAll("tbody tr").length;
      results.dataset.count = String(count);
      if (cursor) {
        const moreButton = h("button", { type: "button", class: "more" }, `More (showing ${count})`);
        moreButton.addEventListener("click", () => {
          moreButton.disabled = true; // one page per click: a second click would ask for it again
          search_(true).finally(() => {
            moreButton.disabled = false; // gone once its page is shown; usable again after a failure
          });
        });
        results.append(moreButton);
      }
    } catch (error) {
      if (mine === searches) app.fail(error);
    }
  }

  async function loadProviders() {
    const { data } = await app.api.get("/voices/providers");
    for (const p of data.providers) {
      if (![...provider.options].some((o) => o.value === p.name)) provider.append(h("option", { value: p.name }, p.name));
    }
    replace(
      providersBox,
      table(
        [
          { label: "Provider", cell: (p) => h("strong", {}, p.name) },
          { label: "Voices", cell: (p) => String(p.voiceCount) },
          { label: "Deprecated", cell: (p) => String(p.deprecatedVoiceCount) },
          { label: "Last sync", cell: (p) => format.time(p.lastSyncedAt) },
          { label: "Last job", cell: (p) => p.lastJobStatus || "—" },
          { label: "Status", cell: (p) => (p.capabilities?.error ? h("span", { class: "badge warn" }, p.capabilities.error) : "enabled") },
        ],
        data.providers,
        { class: "data", id: "providers-table" },
      ),
    );
  }

  async function sync() {
    try {
      const { data } = await app.api.post("/voices/sync", {});
      const jobs = new Map(data.jobs.map((job) => [job.id, job]));
      const show = () =>
        replace(syncBox, table(
          [
            { label: "Job", cell: (j) => h("code", {}, j.id) },
            { label: "Provider", cell: (j) => j.provider || "all" },
            { label: "Status", cell: (j) => h("span", { class: `status ${j.status}` }, j.status) },
            { label: "Added / updated / deprecated", cell: (j) => `${j.voicesAdded} / ${j.voicesUpdated} / ${j.voicesDeprecated}` },
            { label: "Error", cell: (j) => j.errorMessage || "" },
          ],
          [...jobs.values()],
          { class: "data" },
        ));
      show();
      await poll(async () => {
        for (const id of jobs.keys()) {
          if (!FINAL_SYNC.has(jobs.get(id).status)) jobs.set(id, (await app.api.get(`/voices/sync/jobs/${encodeURIComponent(id)}`)).data);
        }
        show();
        return [...jobs.values()].every((j) => FINAL_SYNC.has(j.status));
      }, { signal: abort.signal });
      if (!abort.signal.aborted) {
        app.toast("Voice sync finished.");
        await loadProviders();
      }
    } catch (error) {
      app.fail(error);
    }
  }

  root.append(
    h("section", { "aria-labelledby": "providers-title" },
      h("h3", { id: "providers-title" }, "Providers"),
      providersBox,
      app.isAdmin
        ? h("p", {}, h("button", { type: "button", id: "sync-now", onclick: sync }, "Sync the catalog now"), " (admin)")
        : h("p", { class: "hint" }, "Admins can run a catalog sync from here."),
      syncBox),
    h("section", { "aria-labelledby": "catalog-title" },
      h("h3", { id: "catalog-title" }, "Catalog"),
      h("form", {
        class: "filters",
        id: "voice-filters",
        onsubmit: (event) => {
          event.preventDefault();
          search_();
        },
      },
      searchField, providerField, languageField, genderField, ageField, styleField, useCaseField,
      h("div", { class: "field inline" }, deprecated, h("label", { for: "include-deprecated" }, "Include deprecated")),
      h("button", { type: "submit" }, "Filter")),
      player,
      results),
  );
  loadProviders().catch((error) => app.fail(error));
  await search_();
  return () => abort.abort();
}
