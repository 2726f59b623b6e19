// Signing in: a bearer token kept for this browser tab only (sessionStorage).
// Locally the gateway mints dev tokens; in production the user pastes a Firebase ID token
// or signs in with email and password through Firebase Auth's REST API (what the Firebase
// JS SDK calls), using the project's public Web API key from /console/config.json.

const TOKEN_KEY = "voice-console.token";
const REFRESH_KEY = "voice-console.firebase-refresh";

/** Return the claims of a JWT, for display only (the API verifies the token itself). */
export function claimsOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = payload + "=".repeat((4 - (payload.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

/** Return whether a token's claims say it has expired (or it cannot be read). */
export function expired(token, skewSeconds = 10) {
  const claims = token ? claimsOf(token) : null;
  return !claims || typeof claims.exp !== "number" || claims.exp * 1000 < Date.now() + skewSeconds * 1000;
}

export function currentToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token.trim());
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(REFRESH_KEY);
}

async function problemOf(response) {
  const body = await response.json().catch(() => null);
  return body?.error?.message || body?.error || `HTTP ${response.status}`;
}

/** Mint a dev token at the gateway's dev token route; return the token. */
export async function mintDevToken(path, { userId, admin }) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ userId, admin: Boolean(admin) }),
    credentials: "omit",
  });
  if (!response.ok) throw new Error(await problemOf(response));
  return (await response.json()).token;
}

/** Sign in to Firebase with email and password; return the ID token. */
export async function firebaseSignIn(firebase, { email, password }) {
  const url = `https://identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=${encodeURIComponent(firebase.apiKey)}`;
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password, returnSecureToken: true }),
    credentials: "omit",
  });
  if (!response.ok) throw new Error(await problemOf(response));
  const body = await response.json();
  sessionStorage.setItem(REFRESH_KEY, body.refreshToken);
  return body.idToken;
}

/** Exchange the kept Firebase refresh token for a new ID token; null when there is none. */
export async function firebaseRefresh(firebase) {
  const refresh = sessionStorage.getItem(REFRESH_KEY);
  if (!firebase || !refresh) return null;
  const url = `https://securetoken.googleapis.com/v1/token?key=${encodeURIComponent(firebase.apiKey)}`;
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refresh }),
    credentials: "omit",
  });
  if (!response.ok) return null;
  const body = await response.json();
  sessionStorage.setItem(REFRESH_KEY, body.refresh_token);
  return body.id_token;
}
