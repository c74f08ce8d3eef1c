// The REST API as the console uses it: the bearer token kept in
// sessionStorage, ARM errors turned into exceptions with code and message,
// and the caller's permissions at a scope (Azure's Permissions API).

export const V = {
  subscriptions: '2022-12-01',
  groups: '2021-04-01',
  compute: '2024-03-03',
  images: '2024-03-01',
  templates: '2024-02-01',
  authorization: '2022-04-01',
  batch: '2024-07-01',
  sf: '2024-04-01',
  cyclecloud: '2024-01-01',
  operations: '2021-04-01',
};

const KEY = 'imagesmith.token';

export function token() {
  return sessionStorage.getItem(KEY) || '';
}
export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t);
  else sessionStorage.removeItem(KEY);
  permCache.clear();
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  toString() {
    return `${this.code}: ${this.message}`;
  }
}

// One request. `path` is absolute ("/subscriptions/...") with or without a
// query; the api-version is added. Resolves to {status, body, headers}.
export async function call(method, path, version, body) {
  const url = new URL(path, location.origin);
  if (version && !url.searchParams.has('api-version')) url.searchParams.set('api-version', version);
  const headers = { Authorization: `Bearer ${token()}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(url, init);
  } catch (e) {
    throw new ApiError(0, 'NetworkError', `the server did not answer: ${e.message}`);
  }
  const text = await resp.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!resp.ok) {
    const err = json && json.error;
    throw new ApiError(resp.status, err?.code || String(resp.status), err?.message || text || resp.statusText);
  }
  return { status: resp.status, body: json, headers: resp.headers };
}

export const get = (path, version) => call('GET', path, version).then((r) => r.body);

// Every item of a list, following nextLink.
export async function list(path, version) {
  let out = [];
  let next = path;
  while (next) {
    const body = await get(next, version);
    out = out.concat(body?.value || []);
    next = body?.nextLink ? new URL(body.nextLink).pathname + new URL(body.nextLink).search : null;
  }
  return out;
}

// Azure's action matching: case-insensitive, '*' matches any run of characters.
export function actionMatches(pattern, action) {
  const re = new RegExp(
    '^' + pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\/]/g, '\\$&')).join('.*') + '$',
    'i',
  );
  return re.test(action);
}

const permCache = new Map();

// The caller's permission entries at `scope` ({actions, notActions}[]).
export function permissions(scope) {
  if (!permCache.has(scope)) {
    permCache.set(
      scope,
      list(`${scope}/providers/Microsoft.Authorization/permissions`, V.authorization).catch(() => []),
    );
  }
  return permCache.get(scope);
}

// True when some entry at `scope` allows `action`.
export async function can(scope, action) {
  const entries = await permissions(scope);
  return entries.some(
    (e) => e.actions.some((a) => actionMatches(a, action)) && !e.notActions.some((n) => actionMatches(n, action)),
  );
}

// A download link for GET {id}/download (doc/server.md, "Downloads"). A link
// cannot carry a header, so the token goes in RFC 6750's access_token query
// parameter (the server accepts it on downloads only, and never logs it).
export function downloadUrl(id, version, params = {}) {
  const q = new URLSearchParams({ 'api-version': version, ...params, access_token: token() });
  return `${id}/download?${q}`;
}

// Splits an ARM ID into {subscription, resourceGroup, name, ...}.
export function parseId(id) {
  const parts = id.split('/').filter(Boolean);
  const out = {};
  for (let k = 0; k + 1 < parts.length; k += 2) out[parts[k].toLowerCase()] = parts[k + 1];
  out.name = parts[parts.length - 1];
  return out;
}
