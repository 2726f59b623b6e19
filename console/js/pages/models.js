// Voice models: list, activate, compare side by side, analytics charts, backup and restore.

import { playBlob, speak } from "../audio/clip.js";
import { barChart } from "../charts.js";
import { field, format, h, replace, select, table } from "../dom.js";
import { schemaEnum } from "../openapi.js";

export const title = "Voice models";

const MAX_COMPARED = 5;
const COMPARE_TEXT = "Every voice tells this sentence a little differently.";
const HISTORY_PAGES = 5;

function backupsKey(userId) {
  return `voice-console.backups.${userId}`;
}

function rememberedBackups(userId) {
  try {
    return JSON.parse(localStorage.getItem(backupsKey(userId)) || "[]");
  } catch {
    return [];
  }
}

function remember(userId, backup) {
  const list = [backup, ...rememberedBackups(userId).filter((b) => b.backupPath !== backup.backupPath)].slice(0, 20);
  localStorage.setItem(backupsKey(userId), JSON.stringify(list));
}

/** Syntheses per day over the last `days` days, from the caller's synthesis history. */
async function usageByDay(api, days = 14) {
  const counts = new Map();
  const today = new Date();
  for (let i = days - 1; i >= 0; i -= 1) {
    const day = new Date(today.getTime() - i * 86400000).toISOString().slice(0, 10);
    counts.set(day, 0);
  }
  let cursor = null;
  for (let page = 0; page < HISTORY_PAGES; page += 1) {
    const { data } = await api.get("/synthesis/jobs", { limit: 100, cursor });
    for (const job of data.jobs) {
      const day = (job.createdAt || "").slice(0, 10);
      if (counts.has(day)) counts.set(day, counts.get(day) + 1);
    }
    cursor = data.nextCursor;
    const oldest = data.jobs.at(-1)?.createdAt?.slice(0, 10);
    if (!cursor || (oldest && oldest < [...counts.keys()][0])) break;
  }
  return [...counts.entries()].map(([day, value]) => ({ label: day.slice(5), value }));
}

function qualityHistogram(models) {
  const bins = Array.from({ length: 10 }, (_, i) => ({ label: `${(i / 10).toFixed(1)}`, value: 0 }));
  for (const m of models) bins[Math.min(9, Math.floor((m.qualityScore || 0) * 10))].value += 1;
  return bins;
}

export async function render(root, app) {
  const player = h("audio", { controls: true, id: "compare-audio" });
  const listBox = h("div", { id: "models-list", "aria-live": "polite" }, "Loading…");
  const compareBox = h("div", { id: "compare", "aria-live": "polite" });
  const analyticsBox = h("div", { id: "analytics" });
  const backupBox = h("div", { id: "backups" });
  let models = [];

  async function activate(model) {
    try {
      await app.api.post(`/voice-models/${encodeURIComponent(model.id)}/activate`);
      app.toast(`${model.name || model.id} is now your active voice model.`);
      await load();
    } catch (error) {
      app.fail(error);
    }
  }

  async function compare() {
    const ids = [...listBox.querySelectorAll("input[name=compare]:checked")].map((c) => c.value);
    if (ids.length < 2) {
      app.toast(`Pick two to ${MAX_COMPARED} models to compare.`, { error: true });
      return;
    }
    try {
      const { data } = await app.api.post("/voice-models/compare", { modelIds: ids });
      const rows = [
        ["Provider", (c) => c.model.provider],
        ["Status", (c) => c.model.status],
        ["Active", (c) => (c.model.isActive ? "yes" : "no")],
        ["Quality", (c) => format.score(c.model.qualityScore)],
        ["Clarity", (c) => format.score(c.model.clarity)],
        ["Naturalness", (c) => format.score(c.model.naturalness)],
        ["Similarity", (c) => format.score(c.model.similarity)],
        ["Consistency", (c) => format.score(c.model.consistency)],
        ["Sample rate", (c) => `${c.model.sampleRate} Hz`],
        ["Uses", (c) => String(c.usageStats.usageCount)],
        ["Characters", (c) => String(c.usageStats.characters)],
        ["Average latency", (c) => format.ms(c.usageStats.averageLatency)],
        ["Cost", (c) => format.dollars(c.usageStats.totalCost)],
        ["Last used", (c) => format.time(c.usageStats.lastUsed)],
      ];
      const listen = (c) => {
        const button = h("button", { type: "button", "aria-label": `Listen to ${c.model.name || c.model.id}` }, "▶ Listen");
        button.addEventListener("click", async () => {
          button.disabled = true;
          try {
            await playBlob(player, await speak(app.api, c.model.id, COMPARE_TEXT));
          } catch (error) {
            app.fail(error);
          } finally {
            button.disabled = false;
          }
        });
        return button;
      };
      replace(compareBox,
        h("table", { class: "data compare", id: "compare-table" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Model"), data.models.map((c) => h("th", { scope: "col" }, c.model.name || c.model.id)))),
          h("tbody", {},
            rows.map(([label, cell]) => h("tr", {}, h("th", { scope: "row" }, label), data.models.map((c) => h("td", {}, cell(c))))),
            h("tr", {}, h("th", { scope: "row" }, "Hear it"), data.models.map((c) => h("td", {}, listen(c)))))),
        data.notFound?.length ? h("p", { class: "hint" }, `Not found: ${data.notFound.join(", ")}`) : null,
        player);
    } catch (error) {
      app.fail(error);
    }
  }

  async function loadAnalytics() {
    try {
      const [{ data: totals }, perDay] = await Promise.all([
        app.api.get("/voice-models/user/me/analytics"),
        usageByDay(app.api),
      ]);
      const usage = await Promise.all(
        models.slice(0, 12).map((m) =>
          app.api.get(`/voice-models/${encodeURIComponent(m.id)}/usage-stats`).then((r) => ({ label: (m.name || m.id).slice(0, 12), value: r.data.usageCount })),
        ),
      );
      replace(analyticsBox,
        h("dl", { class: "metrics", id: "analytics-totals" },
          [
            ["Models", `${totals.totalModels} (${totals.activeModels} active)`],
            ["Average quality", format.score(totals.averageQualityScore)],
            ["Uses", String(totals.totalUsageCount)],
            ["Cost", format.dollars(totals.totalCost)],
            ["Storage", `${totals.storageUsedMb.toFixed(2)} MB`],
            ["Last used", format.time(totals.lastUsed)],
          ].map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
        h("div", { class: "charts" },
          barChart({ title: "Syntheses per day (last 14 days, from your synthesis history)", data: perDay }),
          barChart({ title: "Quality score distribution of your models", data: qualityHistogram(models) }),
          usage.length ? barChart({ title: "Uses per model", data: usage }) : null));
    } catch (error) {
      app.fail(error);
    }
  }

  function renderBackups() {
    const remembered = rememberedBackups(app.userId);
    const [pathField, path] = field("Backup path", h("input", { id: "restore-path", list: "backup-paths", required: true, class: "wide" }),
      "A backup made from this browser is suggested; any backup path of yours works.");
    const overwrite = h("input", { type: "checkbox", id: "restore-overwrite" });
    const activateRestored = h("input", { type: "checkbox", id: "restore-activate" });
    const result = h("div", { id: "restore-result", "aria-live": "polite" });
    replace(backupBox,
      h("p", {}, h("button", {
        type: "button",
        id: "backup-now",
        onclick: async () => {
          try {
            const { data } = await app.api.post("/voice-models/user/me/backup");
            remember(app.userId, data);
            app.toast(`Backed up ${data.modelCount} models to ${data.backupPath}.`);
            renderBackups();
          } catch (error) {
            app.fail(error);
          }
        },
      }, "Back up all my models")),
      remembered.length
        ? table([
          { label: "Backup", cell: (b) => h("code", {}, b.backupPath) },
          { label: "Models", cell: (b) => String(b.modelCount) },
          { label: "Made", cell: (b) => format.time(b.createdAt) },
        ], remembered, { class: "data", id: "backups-table" })
        : h("p", { class: "hint" }, "No backup made from this browser yet."),
      h("datalist", { id: "backup-paths" }, remembered.map((b) => h("option", { value: b.backupPath }))),
      h("form", {
        class: "restore",
        onsubmit: async (event) => {
          event.preventDefault();
          try {
            const { data } = await app.api.post("/voice-models/user/me/restore", {
              backupPath: path.value.trim(),
              overwriteExisting: overwrite.checked,
              activateRestored: activateRestored.checked,
            });
            replace(result, `Restored ${data.restored.length}, skipped ${data.skipped.length}; active: ${data.activeModelId || "none"}.`);
            await load();
          } catch (error) {
            app.fail(error);
          }
        },
      },
      h("h4", {}, "Restore"),
      pathField,
      h("div", { class: "field inline" }, overwrite, h("label", { for: "restore-overwrite" }, "Overwrite existing models")),
      h("div", { class: "field inline" }, activateRestored, h("label", { for: "restore-activate" }, "Activate the restored active model")),
      h("button", { type: "submit" }, "Restore")),
      result);
  }

  async function load() {
    const { data } = await app.api.get("/voice-models", { limit: 100 });
    models = data.models;
    if (!models.length) {
      replace(listBox, h("p", {}, "You have no voice models yet: create one below, or train one from samples."));
    } else {
      replace(listBox,
        table([
          {
            label: "Compare",
            cell: (m) => h("input", { type: "checkbox", name: "compare", value: m.id, "aria-label": `Compare ${m.name || m.id}` }),
          },
          { label: "Model", cell: (m) => [h("strong", {}, m.name || "(unnamed)"), h("br"), h("code", {}, m.id)] },
          { label: "Provider", cell: (m) => m.provider },
          { label: "Voice", cell: (m) => m.metadata?.voiceId || m.metadata?.language || "—" },
          { label: "Status", cell: (m) => m.status },
          { label: "Quality", cell: (m) => format.score(m.qualityScore) },
          {
            label: "Active",
            cell: (m) => (m.isActive
              ? h("span", { class: "badge", dataset: { active: "true" } }, "active")
              : h("button", { type: "button", onclick: () => activate(m), "aria-label": `Activate ${m.name || m.id}` }, "Activate")),
          },
        ], models, { class: "data", id: "models-table" }),
        h("button", { type: "button", id: "compare-selected", onclick: compare }, "Compare selected"));
    }
    await loadAnalytics();
  }

  async function createForm() {
    const providers = await schemaEnum("TTSProvider");
    const [nameField, name] = field("Name", h("input", { required: true, maxlength: 100 }));
    const [providerField, provider] = field("Provider", select(providers.length ? providers : ["espeak"], { value: "espeak" }));
    const [voiceField, voiceId] = field("Provider voice", h("input", { value: "en-us", required: true }), "The provider's own voice id, e.g. en-us+f3 for eSpeak");
    const [qualityField, quality] = field("Quality score", h("input", { type: "number", min: 0, max: 1, step: 0.01, value: "0.8" }));
    return h("form", {
      class: "create",
      id: "create-model",
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const slug = name.value.trim().toLowerCase().replace(/[^a-z0-9]+/g, "-") || "model";
          await app.api.post("/voice-models", {
            name: name.value.trim(),
            provider: provider.value,
            modelPath: `models/${app.userId}/${slug}-${Date.now()}/model.bin`,
            qualityScore: Number(quality.value),
            metadata: { voiceId: voiceId.value.trim() },
          });
          app.toast(`Created ${name.value.trim()}.`);
          event.target.reset();
          await load();
        } catch (error) {
          app.fail(error);
        }
      },
    }, nameField, providerField, voiceField, qualityField, h("button", { type: "submit" }, "Create"));
  }

  root.append(
    h("section", { "aria-labelledby": "models-title" }, h("h3", { id: "models-title" }, "Your models"), listBox),
    h("section", { "aria-labelledby": "compare-title" }, h("h3", { id: "compare-title" }, "Side by side"), compareBox),
    h("section", { "aria-labelledby": "analytics-title" }, h("h3", { id: "analytics-title" }, "Analytics"), analyticsBox),
    h("section", { "aria-labelledby": "backup-title" }, h("h3", { id: "backup-title" }, "Backup and restore"), backupBox),
    h("details", {}, h("summary", {}, "Create a voice model from a provider voice"), await createForm()),
  );
  renderBackups();
  await load();
}
