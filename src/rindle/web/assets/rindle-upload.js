// rindle-upload.js: direct uploads from the browser through rindle's upload JSON API.
// An ES module with no dependencies and no build step; rindle's upload API mount serves it
// at {prefix}/static/rindle-upload.js. See guides/browser_uploads.md.
//
//   import { upload } from "/api/static/rindle-upload.js";
//   const done = await upload(file, { endpoint: "/api", profile: "photo",
//                                     onProgress: ({ loaded, total }) => {...} });
//   done.asset_id  // the verified asset (state "validating": promotion is queued)
//
// Presigned PUT or multipart (parallel parts, each retried with bounded exponential backoff),
// progress callbacks, abort through an AbortSignal (the session is then aborted server-side
// too), and an optional Server-Sent Events subscription that resolves when the named
// variants of the asset are ready.

/** S3's smallest part (every part but the last). */
export const MIN_PART_SIZE = 5 * 1024 * 1024;

/** Statuses worth another attempt (0: the request never got an answer). */
const RETRYABLE = new Set([0, 408, 429, 500, 502, 503, 504]);

const DEFAULTS = {
  endpoint: "",              // URL of the upload API mount, e.g. "/api" (no trailing slash)
  profile: undefined,        // the rindle profile name (required)
  strategy: undefined,       // "presigned_put" | "multipart" | undefined (the server picks)
  filename: undefined,       // defaults to file.name
  headers: {},               // extra headers for the JSON API (a CSRF token, Authorization)
  credentials: "same-origin",
  partSize: MIN_PART_SIZE,   // multipart part size (at least MIN_PART_SIZE)
  concurrency: 4,            // parts in flight at once
  retries: 4,                // further attempts per request after the first
  retryDelay: 250,           // ms before the first retry; doubles each time
  maxRetryDelay: 8000,       // ms, the ceiling of one backoff
  onProgress: null,          // ({ loaded, total }) => void
  signal: null,              // an AbortSignal: abort the upload and its session
  events: null,              // async (assetId) => SSE URL; with `variants`, builds `ready`
  variants: [],              // variant names `ready` waits for
};

/** A refusal or failure: `status` is the HTTP status (0 without an answer), `code` the
 * rindle error code of a JSON error answer (or "network_error", "storage_error", ...). */
export class RindleUploadError extends Error {
  constructor(message, { status = 0, code = "network_error", body = null } = {}) {
    super(message);
    this.name = "RindleUploadError";
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

function abortError() {
  return new DOMException("the upload was aborted", "AbortError");
}

/** The delay before retry number `attempt` (0-based): retryDelay * 2^attempt, capped. */
export function backoff(attempt, retryDelay = DEFAULTS.retryDelay,
                        maxRetryDelay = DEFAULTS.maxRetryDelay) {
  return Math.min(maxRetryDelay, retryDelay * 2 ** attempt);
}

function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(abortError());
    const timer = setTimeout(done, ms);
    function done() {
      if (signal) signal.removeEventListener("abort", stop);
      resolve();
    }
    function stop() {
      clearTimeout(timer);
      reject(abortError());
    }
    if (signal) signal.addEventListener("abort", stop, { once: true });
  });
}

/** Run `attempt()` until it succeeds, fails for good, or `retries` more tries are spent. */
async function retrying(o, signal, attempt) {
  for (let tries = 0; ; tries++) {
    if (signal && signal.aborted) throw abortError();
    try {
      return await attempt();
    } catch (err) {
      const again = err instanceof RindleUploadError && RETRYABLE.has(err.status);
      if (!again || tries >= o.retries || (signal && signal.aborted)) throw err;
      await pause(backoff(tries, o.retryDelay, o.maxRetryDelay), signal);
    }
  }
}

function options(given) {
  const o = { ...DEFAULTS, ...given };
  o.endpoint = String(o.endpoint).replace(/\/+$/, "");
  if (!(o.partSize >= MIN_PART_SIZE)) throw new TypeError(`partSize must be >= ${MIN_PART_SIZE}`);
  if (!(o.concurrency >= 1)) throw new TypeError("concurrency must be >= 1");
  if (!(o.retries >= 0)) throw new TypeError("retries must be >= 0");
  return o;
}

async function call(o, signal, method, path, body) {
  return retrying(o, signal, async () => {
    const headers = { Accept: "application/json", ...o.headers };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(o.endpoint + path, {
        method, headers, credentials: o.credentials, signal: signal || undefined,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      if (signal && signal.aborted) throw abortError();
      throw new RindleUploadError(`${method} ${path}: ${err.message}`);
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new RindleUploadError(error.message || `${method} ${path} answered ${response.status}`,
                                  { status: response.status, code: error.code || "http_error",
                                    body: data });
    }
    return data;
  });
}

/** Send `blob` with XMLHttpRequest (fetch reports no upload progress). */
function send(method, url, headers, blob, signal, onProgress) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(abortError());
    const xhr = new XMLHttpRequest();
    const stop = () => xhr.abort();
    const cleanup = () => { if (signal) signal.removeEventListener("abort", stop); };
    xhr.open(method, url);
    for (const [name, value] of Object.entries(headers || {})) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () => {
      cleanup();
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(blob.size);
        resolve({ status: xhr.status, etag: xhr.getResponseHeader("ETag") });
      } else {
        reject(new RindleUploadError(`${method} to storage answered ${xhr.status}`,
                                     { status: xhr.status, code: "storage_error" }));
      }
    };
    xhr.onerror = () => { cleanup(); reject(new RindleUploadError(`${method} to storage failed`)); };
    xhr.onabort = () => { cleanup(); reject(abortError()); };
    if (signal) signal.addEventListener("abort", stop, { once: true });
    xhr.send(blob);
  });
}

function progress(o, total) {
  const loaded = new Map();
  return (key, bytes) => {
    loaded.set(key, bytes);
    if (!o.onProgress) return;
    let sum = 0;
    for (const value of loaded.values()) sum += value;
    o.onProgress({ loaded: Math.min(sum, total), total });
  };
}

async function putOnce(o, signal, session, file, report) {
  const signed = await call(o, signal, "POST", `/uploads/${session.id}/sign`, {});
  await retrying(o, signal, () => {
    report(0, 0);
    return send(signed.method, signed.url, signed.headers, file, signal, (n) => report(0, n));
  });
  return call(o, signal, "POST", `/uploads/${session.id}/verify`);
}

async function multipart(o, signal, session, file, report) {
  const count = Math.max(1, Math.ceil(file.size / o.partSize));
  const parts = new Array(count);
  let next = 0;
  const inner = new AbortController();
  const onAbort = () => inner.abort();
  if (signal) signal.addEventListener("abort", onAbort, { once: true });
  const worker = async () => {
    while (next < count) {
      const index = next++;
      const number = index + 1;
      const blob = file.slice(index * o.partSize, Math.min(file.size, number * o.partSize));
      parts[index] = await retrying(o, inner.signal, async () => {
        const signed = await call({ ...o, retries: 0 }, inner.signal, "POST",
                                  `/uploads/${session.id}/parts/${number}`);
        report(number, 0);
        const sent = await send(signed.method || "PUT", signed.url, signed.headers, blob,
                                inner.signal, (n) => report(number, n));
        if (!sent.etag) {
          throw new RindleUploadError("the storage's ETag header is not readable: its CORS "
                                      + "rules must expose ETag", { status: sent.status,
                                                                    code: "etag_unreadable" });
        }
        return { PartNumber: number, ETag: sent.etag };
      });
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(o.concurrency, count) }, () =>
      worker().catch((err) => { inner.abort(); throw err; })));
  } finally {
    if (signal) signal.removeEventListener("abort", onAbort);
  }
  return call(o, signal, "POST", `/uploads/${session.id}/complete`, { parts });
}

/**
 * Wait on a Server-Sent Events stream until every variant named in `variants` of the
 * asset `assetId` is ready. Returns `{ opened, ready, close }`: `opened` resolves once the
 * stream is connected, `ready` with `{ name: event }` for those variants, and rejects when
 * one of them fails or is cancelled (a RindleUploadError with code "variant_failed" or
 * "variant_cancelled", its `body` the stream's event), the asset ends quarantined/failed/
 * deleted ("asset_<state>"), the stream is refused ("events_closed"), or `signal` aborts.
 */
export function waitForVariants(url, { assetId, variants = [], signal = null } = {}) {
  const wanted = new Set(variants);
  const seen = {};
  let source = null;
  let settleOpen;
  const opened = new Promise((resolve, reject) => { settleOpen = { resolve, reject }; });
  const close = () => { if (source) source.close(); };
  const ready = new Promise((resolve, reject) => {
    const fail = (error) => { close(); settleOpen.reject(error); reject(error); };
    if (signal && signal.aborted) return fail(abortError());
    if (signal) signal.addEventListener("abort", () => fail(abortError()), { once: true });
    source = new EventSource(url, { withCredentials: false });
    source.onopen = () => settleOpen.resolve();
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        fail(new RindleUploadError("the event stream was refused or closed",
                                   { code: "events_closed" }));
      }
    };
    const check = () => {
      if ([...wanted].every((name) => name in seen)) { close(); resolve(seen); }
    };
    source.addEventListener("variant", (message) => {
      const event = JSON.parse(message.data);
      if (assetId && event.asset_id !== assetId) return;
      if (!wanted.has(event.name)) return;
      if (event.state === "ready") { seen[event.name] = event; check(); }
      else if (event.state === "failed" || event.state === "cancelled") {
        fail(new RindleUploadError(`the variant ${event.name} ${event.state === "failed"
          ? "failed" : "was cancelled"}`, { code: `variant_${event.state}`, body: event }));
      }
    });
    source.addEventListener("asset", (message) => {
      const event = JSON.parse(message.data);
      if (assetId && (event.asset_id || event.id) !== assetId) return;
      if (["quarantined", "failed", "deleted"].includes(event.state)) {
        fail(new RindleUploadError(`the asset is ${event.state}`, { code: `asset_${event.state}`,
                                                                body: event }));
      }
    });
    if (!wanted.size) { close(); settleOpen.resolve(); resolve(seen); }
  });
  ready.catch(() => {});  // a caller that never awaits `ready` sees no unhandled rejection
  return { opened, ready, close };
}

/**
 * A client bound to `options` (see DEFAULTS): `upload(file, more)` and the single API
 * calls `sign`, `signPart`, `listParts`, `complete`, `verify`, `abort` (each resolves to
 * the API's JSON answer and rejects with a RindleUploadError).
 */
export function createClient(given = {}) {
  const base = options(given);
  const one = (o) => ({ ...o, retries: 0 });
  return {
    options: base,
    upload: (file, more = {}) => upload(file, { ...base, ...more }),
    create: (body) => call(one(base), base.signal, "POST", "/uploads", body),
    sign: (id) => call(one(base), base.signal, "POST", `/uploads/${id}/sign`, {}),
    signPart: (id, n) => call(one(base), base.signal, "POST", `/uploads/${id}/parts/${n}`),
    listParts: (id) => call(one(base), base.signal, "GET", `/uploads/${id}/parts`),
    complete: (id, parts) => call(one(base), base.signal, "POST", `/uploads/${id}/complete`,
                                  { parts }),
    verify: (id) => call(one(base), base.signal, "POST", `/uploads/${id}/verify`),
    abort: (id) => call(one(base), null, "DELETE", `/uploads/${id}`),
  };
}

/**
 * Upload `file` (a File or Blob) through the API at `options.endpoint` to
 * `options.profile`. Resolves to the API's verify/complete answer
 * (`{ id, asset_id, state, session_state }`) plus `session` (the creation answer) and
 * `ready` (a promise from `waitForVariants` when `options.events` and `options.variants`
 * are given, else null). Rejects with a RindleUploadError, or an AbortError after
 * `options.signal` aborts (the session is aborted on the server, best effort).
 */
export async function upload(file, given = {}) {
  const o = options(given);
  const signal = o.signal;
  if (!o.profile) throw new TypeError("options.profile is required");
  if (signal && signal.aborted) throw abortError();
  const body = { profile: o.profile, filename: o.filename || file.name || "upload",
                 size: file.size };
  if (file.type) body.content_type = file.type;
  if (o.strategy) body.strategy = o.strategy;
  const session = await call({ ...o, retries: 0 }, signal, "POST", "/uploads", body);
  let events = null;
  try {
    if (o.events && o.variants.length) {
      events = waitForVariants(await o.events(session.asset_id),
                               { assetId: session.asset_id, variants: o.variants, signal });
      await events.opened;
    }
    const report = progress(o, file.size);
    const done = session.strategy === "multipart"
      ? await multipart(o, signal, session, file, report)
      : await putOnce(o, signal, session, file, report);
    return { ...done, session, ready: events ? events.ready : null };
  } catch (err) {
    if (events) events.close();
    if ((signal && signal.aborted) || (err && err.name === "AbortError")) {
      try { await call({ ...o, retries: 0 }, null, "DELETE", `/uploads/${session.id}`); }
      catch { /* best effort: an expired session is cleaned up by the server */ }
      throw abortError();
    }
    throw err;
  }
}
