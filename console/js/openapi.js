// The API's own description (GET /openapi.json, public): enum values for the filters and
// forms come from it, so the console never drifts from the API.

let documentPromise = null;

function openapi() {
  if (!documentPromise) {
    documentPromise = fetch("/openapi.json", { credentials: "omit" }).then((r) => {
      if (!r.ok) throw new Error(`openapi.json: HTTP ${r.status}`);
      return r.json();
    });
  }
  return documentPromise;
}

/** Return the enum values of a component schema (e.g. "Gender"), or [] when unknown. */
export async function schemaEnum(name) {
  try {
    const doc = await openapi();
    return doc.components?.schemas?.[name]?.enum || [];
  } catch {
    return [];
  }
}
