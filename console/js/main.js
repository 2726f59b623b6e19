// The console's shell: configuration, sign-in, navigation between pages (#/name).

import { createApi } from "./api.js";
import * as auth from "./auth.js";
import { field, h, replace } from "./dom.js";
import * as live from "./pages/live.js";
import * as models from "./pages/models.js";
import * as playground from "./pages/playground.js";
import * as samples from "./pages/samples.js";
import * as voices from "./pages/voices.js";

const PAGES = { voices, playground, models, samples, live };
const main = document.getElementById("main");
const who = document.getElementById("who");
const toasts = document.getElementById("toasts");

let config = null;
let leavePage = null;

/** Show a short message in the live region; errors stay until dismissed. */
function toast(message, { error = false } = {}) {
  const item = h("div", { class: error ? "toast error" : "toast", role: error ? "alert" : null }, message);
  if (error) {
    item.append(" ", h("button", { type: "button", class: "link", onclick: () => item.remove() }, "Dismiss"));
  } else {
    setTimeout(() => item.remove(), 5000);
  }
  toasts.append(item);
}

let refreshing = null;

/**
 * Return the token for the request about to be sent. A Firebase ID token lives an hour: one
 * about to expire is exchanged for a new one first (one exchange at a time, however many
 * requests wait), so a page left open keeps working without a new sign-in.
 */
async function freshToken() {
  const token = auth.currentToken();
  if (!token || !auth.expired(token)) return token;
  refreshing ??= ensureFreshToken().finally(() => {
    refreshing = null;
  });
  await refreshing;
  return auth.currentToken();
}

const api = createApi(freshToken, () => {
  if (auth.expired(auth.currentToken())) {
    auth.signOut();
    toast("Your token has expired: sign in again.", { error: true });
    route();
  }
});

function app() {
  const token = auth.currentToken();
  const claims = auth.claimsOf(token) || {};
  return {
    api,
    config,
    token,
    userId: claims.sub,
    isAdmin: claims.admin === true,
    toast,
    /** Show an error from the API (or anything thrown) to the user. */
    fail(error) {
      toast(error.describe ? error.describe() : String(error.message || error), { error: true });
    },
  };
}

function renderWho() {
  const token = auth.currentToken();
  if (!token) {
    replace(who, "Not signed in");
    return;
  }
  const claims = auth.claimsOf(token) || {};
  const until = claims.exp ? new Date(claims.exp * 1000).toLocaleTimeString() : "?";
  replace(
    who,
    h("span", { id: "signed-in-as" }, `Signed in as ${claims.sub || "?"}`),
    claims.admin === true ? h("span", { class: "badge" }, "admin") : null,
    h("small", {}, ` until ${until} `),
    h("button", { type: "button", onclick: () => { auth.signOut(); route(); } }, "Sign out"),
  );
}

function signInPage() {
  const sections = [];
  const done = (token) => {
    auth.saveToken(token);
    toast(`Signed in as ${auth.claimsOf(token)?.sub}`);
    if (!location.hash || location.hash === "#/signin") location.hash = "#/voices";
    route();
  };
  if (config.auth.devTokenPath) {
    const [userField, user] = field("User id", h("input", { name: "userId", required: true, value: "dev", autocomplete: "username" }));
    const admin = h("input", { type: "checkbox", name: "admin", id: "dev-admin" });
    sections.push(
      h("form", {
        class: "card",
        id: "dev-sign-in",
        onsubmit: async (event) => {
          event.preventDefault();
          try {
            done(await auth.mintDevToken(config.auth.devTokenPath, { userId: user.value.trim(), admin: admin.checked }));
          } catch (error) {
            toast(`Could not mint a token: ${error.message}`, { error: true });
          }
        },
      },
      h("h3", {}, "Local dev token"),
      h("p", {}, "The local gateway mints a dev-signed token for any user id (the same as ", h("code", {}, "make token"), ")."),
      userField,
      h("div", { class: "field inline" }, admin, h("label", { for: "dev-admin" }, "Admin claim")),
      h("button", { type: "submit" }, "Sign in")),
    );
  }
  if (config.auth.firebase) {
    const [emailField, email] = field("Email", h("input", { type: "email", required: true, autocomplete: "username" }));
    const [passwordField, password] = field("Password", h("input", { type: "password", required: true, autocomplete: "current-password" }));
    sections.push(
      h("form", {
        class: "card",
        onsubmit: async (event) => {
          event.preventDefault();
          try {
            done(await auth.firebaseSignIn(config.auth.firebase, { email: email.value, password: password.value }));
          } catch (error) {
            toast(`Firebase sign-in failed: ${error.message}`, { error: true });
          }
        },
      },
      h("h3", {}, "Firebase"),
      h("p", {}, `Sign in to the project ${config.auth.firebase.projectId} with email and password.`),
      emailField, passwordField,
      h("button", { type: "submit" }, "Sign in")),
    );
  }
  const [tokenField, pasted] = field(
    "Bearer token",
    h("textarea", { rows: 4, name: "token", required: true, spellcheck: "false", autocomplete: "off" }),
    config.auth.mode === "dev" ? "Output of make -s token USER=alice" : "A Firebase ID token of your user",
  );
  sections.push(
    h("form", {
      class: "card",
      id: "paste-sign-in",
      onsubmit: (event) => {
        event.preventDefault();
        const token = pasted.value.trim();
        if (auth.expired(token, 0)) {
          toast("That is not a current token (unreadable or expired).", { error: true });
          return;
        }
        done(token);
      },
    },
    h("h3", {}, "Paste a token"),
    tokenField,
    h("button", { type: "submit" }, "Sign in")),
  );
  return h("section", { "aria-labelledby": "signin-title" },
    h("h2", { id: "signin-title" }, "Sign in"),
    h("p", {}, "The console calls the API with your bearer token; it is kept in this tab only."),
    h("div", { class: "cards" }, sections));
}

async function ensureFreshToken() {
  const token = auth.currentToken();
  if (token && auth.expired(token) && config.auth.firebase) {
    const fresh = await auth.firebaseRefresh(config.auth.firebase);
    if (fresh) auth.saveToken(fresh);
    else auth.signOut();
  } else if (token && auth.expired(token)) {
    auth.signOut();
  }
}

async function route() {
  if (leavePage) {
    try {
      leavePage();
    } catch (error) {
      console.error(error);
    }
    leavePage = null;
  }
  await ensureFreshToken();
  renderWho();
  const name = (location.hash.match(/^#\/([a-z]+)/) || [])[1] || "voices";
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.getAttribute("href") === `#/${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!auth.currentToken()) {
    replace(main, signInPage());
    document.title = "Sign in · Voice platform console";
    return;
  }
  const page = PAGES[name] || voices;
  document.title = `${page.title} · Voice platform console`;
  const root = h("section", { class: "page", id: `page-${name}`, "aria-labelledby": `title-${name}` },
    h("h2", { id: `title-${name}` }, page.title));
  replace(main, root);
  main.focus({ preventScroll: true });
  try {
    leavePage = (await page.render(root, app(), new URLSearchParams(location.hash.split("?")[1] || ""))) || null;
  } catch (error) {
    app().fail(error);
  }
}

async function start() {
  try {
    const response = await fetch("/console/config.json", { credentials: "omit" });
    config = await response.json();
  } catch (error) {
    replace(main, h("p", { role: "alert" }, `The console could not load its configuration: ${error.message}`));
    return;
  }
  window.addEventListener("hashchange", route);
  await route();
  document.body.dataset.ready = "true";
}

start();
