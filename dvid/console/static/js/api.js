// The server's HTTP API, as the console uses it. Errors carry the server's message verbatim.

export class ApiError extends Error {
  constructor(status, message, path) {
    super(message);
    this.status = status;
    this.path = path;
  }
}

let adminToken = sessionStorage.getItem("dvid-admin-token") || "";

export function setAdminToken(token) {
  adminToken = token || "";
  if (adminToken) sessionStorage.setItem("dvid-admin-token", adminToken);
  else sessionStorage.removeItem("dvid-admin-token");
}

export function getAdminToken() {
  return adminToken;
}

/** `path` relative to /api with the admin token added (when one is set and `admin` is true). */
export function apiUrl(path, params = {}, admin = false) {
  const url = new URL(`/api/${path.replace(/^\//, "")}`, location.origin);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  if (admin && adminToken) url.searchParams.set("admintoken", adminToken);
  return url.toString();
}

async function check(response, path) {
  if (response.ok) return response;
  const text = (await response.text()).trim();
  throw new ApiError(response.status, text || response.statusText, path);
}

/** GET (or another method) and the response; throws ApiError on a non-2xx status. */
export async function request(path, { method = "GET", params, body, json, admin = false, signal } = {}) {
  const init = { method, signal, headers: {} };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  return check(await fetch(apiUrl(path, params, admin || method !== "GET"), init), path);
}

export async function getJSON(path, params, signal) {
  return (await request(path, { params, signal })).json();
}

export async function getBytes(path, params, signal) {
  return (await request(path, { params, signal })).arrayBuffer();
}

export async function postJSON(path, json, params) {
  const response = await request(path, { method: "POST", json, params });
  const text = await response.text();
  if (!text) return null;
  try { return JSON.parse(text); } catch { return text; }
}

/** The repo info of the repo holding `uuid`, and the node's record in its DAG. */
export async function repoOf(uuid) {
  const info = await getJSON(`repo/${uuid}/info`);
  const node = Object.values(info.DAG.Nodes).find((n) => n.UUID.startsWith(uuid));
  return { info, node };
}

let consoleConfig = null;
export async function config() {
  if (!consoleConfig) consoleConfig = await getJSON("server/console");
  return consoleConfig;
}
