// Calls to the platform's HTTP API, at this page's origin, with the signed-in bearer token.

/** An API error: the platform's body {error, code, timestamp, requestId} and the status. */
export class ApiError extends Error {
  constructor(status, body) {
    const message = (body && (body.error?.message || body.error)) || `HTTP ${status}`;
    super(typeof message === "string" ? message : `HTTP ${status}`);
    this.status = status;
    this.code = body?.code || body?.error?.code || null;
    this.requestId = body?.requestId || null;
    this.details = body?.details || null;
  }

  /** What to show a person: the message, the code and the request id to quote. */
  describe() {
    const extra = [this.code, this.requestId && `request ${this.requestId}`].filter(Boolean);
    const details = (this.details || [])
      .map((d) => `${d.field ? `${d.field}: ` : ""}${d.message}`)
      .join("; ");
    return `${this.message}${details ? ` (${details})` : ""}${extra.length ? ` [${extra.join(", ")}]` : ""}`;
  }
}

function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === "" || value === false) continue;
    params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * Return an API client. `tokenOf()` gives (or resolves to) the current bearer token, fresh
 * for the request about to be sent; `onUnauthorized()` runs when the API answers 401 (the
 * token expired or was revoked).
 */
export function createApi(tokenOf, onUnauthorized) {
  async function send(method, path, { query, body, accept } = {}) {
    const headers = { Accept: accept || "application/json" };
    const token = await tokenOf();
    if (token) headers.Authorization = `Bearer ${token}`;
    const init = { method, headers, credentials: "omit", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const started = performance.now();
    const response = await fetch(withQuery(path, query), init);
    const ms = performance.now() - started;
    if (response.status === 401) onUnauthorized();
    if (!response.ok) {
      let problem = null;
      try {
        problem = await response.json();
      } catch {
        problem = null;
      }
      throw new ApiError(response.status, problem);
    }
    return { response, ms };
  }

  async function json(method, path, options) {
    const { response, ms } = await send(method, path, options);
    const data = response.status === 204 ? null : await response.json();
    return { data, status: response.status, ms, headers: response.headers };
  }

  return {
    get: (path, query) => json("GET", path, { query }),
    post: (path, body) => json("POST", path, { body }),
    put: (path, body) => json("PUT", path, { body }),
    delete: (path, body) => json("DELETE", path, { body }),
    /** GET (or POST with a body) answering bytes: {blob, ms, headers}. */
    async blob(path, { method = "GET", body, accept = "*/*" } = {}) {
      const { response, ms } = await send(method, path, { body, accept });
      return { blob: await response.blob(), ms, headers: response.headers };
    },
    /** Send a body of bytes or a FormData (multipart, its own content type) and answer JSON. */
    async upload(method, path, data, contentType) {
      const headers = { Accept: "application/json" };
      if (contentType) headers["Content-Type"] = contentType;
      const token = await tokenOf();
      if (token) headers.Authorization = `Bearer ${token}`;
      const started = performance.now();
      const response = await fetch(path, { method, headers, body: data, credentials: "omit" });
      const ms = performance.now() - started;
      if (response.status === 401) onUnauthorized();
      const payload = await response.json().catch(() => null);
      if (!response.ok) throw new ApiError(response.status, payload);
      return { data: payload, status: response.status, ms, headers: response.headers };
    },
  };
}

/** Poll `check()` every `everyMs` until it returns a truthy value or `signal` aborts. */
export async function poll(check, { everyMs = 1000, timeoutMs = 10 * 60 * 1000, signal } = {}) {
  const deadline = performance.now() + timeoutMs;
  while (!signal?.aborted) {
    const result = await check();
    if (result) return result;
    if (performance.now() > deadline) throw new Error("Gave up waiting");
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return null;
}
