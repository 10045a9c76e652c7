// Calls to /api/*, as any client makes them: the key in X-API-Key, JSON or multipart bodies, and
// the contract's envelope read whatever the status, so a refusal shows the service's own words.

/**
 * POST `body` (a FormData, or an object sent as JSON) to `path`. Resolves, never rejects, to
 * `{ok, status, data, meta, requestId, latencyMs}` or `{ok: false, status, code, message, requestId, latencyMs}`.
 */
export async function post(path, body, apiKey) {
  const headers = {};
  if (apiKey) headers['X-API-Key'] = apiKey;
  let payload = body;
  if (!(body instanceof FormData)) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const started = performance.now();
  let response;
  try {
    response = await fetch(path, { method: 'POST', headers, body: payload, cache: 'no-store' });
  } catch (error) {
    return {
      ok: false, status: 0, code: 'network', requestId: null, latencyMs: performance.now() - started,
      message: `The service could not be reached: ${error.message}`,
    };
  }
  let envelope = null;
  try {
    envelope = await response.json();
  } catch {
    // Not the service's JSON (a proxy's error page, say): reported by status below.
  }
  const latencyMs = performance.now() - started;
  const requestId = envelope?.meta?.request_id || envelope?.request_id || response.headers.get('X-Request-ID');
  if (response.ok && envelope?.success === true) {
    return { ok: true, status: response.status, data: envelope.data, meta: envelope.meta, requestId, latencyMs };
  }
  return {
    ok: false,
    status: response.status,
    code: envelope?.code ?? null,
    message: envelope?.error ?? `HTTP ${response.status} ${response.statusText}, without the service's error envelope`,
    requestId,
    latencyMs,
  };
}
