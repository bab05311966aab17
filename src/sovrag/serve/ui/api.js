// The HTTP API: the key from sessionStorage as a Bearer header, OpenAI-style errors turned into messages,
// and a timeout on every call so nothing waits forever.

const KEY = 'sovrag.key';
const DEFAULT_TIMEOUT_MS = 30000;

export class ApiError extends Error {
  constructor(status, message, code = null, param = null) {
    super(message);
    this.status = status; // 0: no HTTP answer at all (network error, timeout)
    this.code = code;
    this.param = param; // the request field the error is about, e.g. "sovrag.llm"
  }
}

export const getKey = () => sessionStorage.getItem(KEY);
export const setKey = (key) => sessionStorage.setItem(KEY, key);

/** Forget the key and whatever else this tab kept (conversations and choices are in localStorage: kept). */
export function clearSession() {
  for (const k of Object.keys(sessionStorage)) if (k.startsWith('sovrag.')) sessionStorage.removeItem(k);
}

let unauthorized = () => {};
/** Called when a request with the stored key is refused with 401 (revoked or deleted key). */
export function onUnauthorized(fn) { unauthorized = fn; }

export const NETWORK_MESSAGE = 'Cannot reach the sovrag server: check the network connection or whether the server is running.';

/** An ApiError from a non-2xx response, with the server's own message when it sent one. */
export async function errorFrom(res) {
  let message = `${res.status} ${res.statusText}`.trim();
  let code = null;
  let param = null;
  try {
    const body = await res.json();
    if (body && body.error) {
      message = body.error.message || message;
      code = body.error.code || null;
      param = body.error.param || null;
    }
  } catch { /* not JSON: keep the status line */ }
  if (res.status === 429 && !/retry/i.test(message)) message += ' (too many requests: try again shortly)';
  return new ApiError(res.status, message, code, param);
}

/** A signal aborting after `ms`, or when `outer` aborts; `timedOut()` tells which. */
export function deadline(ms, outer) {
  const ctl = new AbortController();
  let expired = false;
  const timer = setTimeout(() => { expired = true; ctl.abort(); }, ms);
  if (outer) {
    if (outer.aborted) ctl.abort();
    else outer.addEventListener('abort', () => ctl.abort(), { once: true });
  }
  return { signal: ctl.signal, timedOut: () => expired, done: () => clearTimeout(timer) };
}

function headers(key, extra = {}) {
  const k = key ?? getKey();
  return k ? { Authorization: `Bearer ${k}`, ...extra } : extra;
}

/** fetch() with the key, a timeout and clear errors; the raw Response, known to be ok. */
export async function request(path, { method = 'GET', json, key, timeout = DEFAULT_TIMEOUT_MS, signal, accept } = {}) {
  const d = deadline(timeout, signal);
  const extra = json === undefined ? {} : { 'Content-Type': 'application/json' };
  if (accept) extra.Accept = accept;
  let res;
  try {
    res = await fetch(path, {
      method, headers: headers(key, extra), signal: d.signal,
      body: json === undefined ? undefined : JSON.stringify(json),
    });
  } catch (e) {
    d.done();
    if (d.timedOut()) throw new ApiError(0, `The server did not answer within ${Math.round(timeout / 1000)} s.`, 'timeout');
    if (signal && signal.aborted) throw new ApiError(0, 'Stopped.', 'aborted');
    throw new ApiError(0, NETWORK_MESSAGE, 'network_error');
  }
  d.done();
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401 && key === undefined) unauthorized(err);
    throw err;
  }
  return res;
}

/** A JSON call: `api('/v1/collections')`, `api(path, {method: 'POST', json: {...}})`. */
export async function api(path, options = {}) {
  const res = await request(path, options);
  return res.json();
}

/**
 * Upload files as multipart/form-data (field `files`) with upload progress; resolves with the JSON body.
 * XMLHttpRequest rather than fetch: fetch cannot report upload progress.
 */
export function upload(path, files, onProgress, timeoutMs = 30 * 60 * 1000) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const f of files) form.append('files', f, f.name);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.timeout = timeoutMs;
    const key = getKey();
    if (key) xhr.setRequestHeader('Authorization', `Bearer ${key}`);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onerror = () => reject(new ApiError(0, NETWORK_MESSAGE, 'network_error'));
    xhr.ontimeout = () => reject(new ApiError(0, 'The upload timed out.', 'timeout'));
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) { resolve(body); return; }
      const message = body && body.error ? body.error.message : `${xhr.status} ${xhr.statusText}`;
      const err = new ApiError(xhr.status, message, body && body.error ? body.error.code : null);
      if (xhr.status === 401) unauthorized(err);
      reject(err);
    };
    xhr.send(form);
  });
}
