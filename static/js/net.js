// Talking to the callscribe server: REST calls, ICE servers, the SDP offer (no trickle ICE), plain-words errors,
// and the access token of an invite link.
//
// Access tokens: a page opened with `?token=` (an invite link) keeps the token for this tab (sessionStorage, per
// server origin), takes it out of the address bar, and sends it as `Authorization: Bearer <token>` on every request
// and as `"token"` in the JSON offer. A 401 from the server (access control is on) is announced with the
// `callscribe:access` window event, so that a page can show its invite / access-key controls.

const params = new URLSearchParams(location.search);
/** Base URL of the server; the page's own origin unless ?server=https://host:port is given. */
export const SERVER = (params.get("server") || "").replace(/\/+$/, "");

/** Where this tab keeps its token: one per server origin, so that a token given for one server never goes to
 * another (a later `?server=` link in the same tab). */
const TOKEN_KEY = (() => {
  let origin = location.origin;
  try { if (SERVER) origin = new URL(SERVER, location.href).origin; } catch { origin = SERVER; }
  return `callscribe.token@${origin}`;
})();

function storage() {
  try { return window.sessionStorage; } catch { return null; } // storage blocked (e.g. sandboxed frames)
}

let token = null;
{
  const given = (params.get("token") || "").trim();
  const store = storage();
  if (given) {
    token = given;
    if (store) store.setItem(TOKEN_KEY, given);
    const url = new URL(location.href);
    url.searchParams.delete("token");
    history.replaceState(history.state, "", url.pathname + url.search + url.hash); // out of the address bar
  } else {
    token = (store && store.getItem(TOKEN_KEY)) || null;
  }
}

/** What this page knows about access control: `required` once a token is held or the server asked for one;
 * `rejected` while the server refuses the token held (401). */
export const access = { required: Boolean(token), rejected: false };

/** The access token of this tab (from an invite link or typed in), or null. */
export const getToken = () => token;

/** Keep `value` as this tab's access token (null forgets it). */
export function setToken(value) {
  token = (value || "").trim() || null;
  access.rejected = false;
  const store = storage();
  if (store) {
    if (token) store.setItem(TOKEN_KEY, token);
    else store.removeItem(TOKEN_KEY);
  }
  if (token) markAccess(false);
}

/** Access control is on; `rejected`: the server refused the token held. Tells the page when that changes. */
function markAccess(rejected) {
  if (access.required && access.rejected === rejected) return;
  access.required = true;
  access.rejected = rejected;
  window.dispatchEvent(new CustomEvent("callscribe:access"));
}

/** What a room token says about itself ({room, role, exp, …}), read without checking it (only to word the
 * page: the server decides); null when the token is not a JWT (e.g. an operator key). */
export function tokenClaims(value = token) {
  const part = value && value.split(".")[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))));
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}

/** `headers` (a plain object) with the tab's `Authorization: Bearer …` added when a token is held. */
export function authHeaders(headers = {}) {
  return token ? { ...headers, Authorization: `Bearer ${token}` } : { ...headers };
}

/** An absolute URL for `path` on the server (`path` may already be absolute, e.g. an answer's session_url). */
export function serverUrl(path) {
  return /^[a-z][a-z0-9+.-]*:/i.test(path) ? path : SERVER + path;
}

/** fetch() against the server with the access token; throws ServerUnreachable, returns the Response. A 401 marks
 * access control as on. */
export async function serverFetch(path, options = {}) {
  let resp;
  try {
    resp = await fetch(serverUrl(path), { cache: "no-store", ...options, headers: authHeaders(options.headers) });
  } catch (err) {
    throw new ServerUnreachable(err);
  }
  if (resp.status === 401) markAccess(Boolean(token));
  return resp;
}

/** The ApiError for a failed response whose body was `text` (the server's JSON error, or a proxy's page). */
export function responseError(resp, text, path = "") {
  let error = {};
  try { error = JSON.parse(text).error || {}; } catch { /* not our JSON error */ }
  return new ApiError(resp.status, error.code || "http_error",
    error.message || `HTTP ${resp.status} ${resp.statusText}`.trim(), path);
}

export class ServerUnreachable extends Error {
  constructor(cause) {
    super(`Cannot reach the callscribe server at ${SERVER || location.origin}.`);
    this.name = "ServerUnreachable";
    this.cause = cause;
  }
}

export class ServerBusy extends Error {
  constructor(message, retryAfter) {
    super(message);
    this.name = "ServerBusy";
    this.retryAfter = retryAfter;
  }
}

export class ApiError extends Error {
  constructor(status, code, message, path = "") {
    super(message || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.path = path; // the request's path (to word 403s: calling vs. watching vs. the rest)
  }
}

/** fetch() against the server; throws ServerUnreachable / ServerBusy / ApiError, returns parsed JSON (or null). */
export async function api(path, options = {}) {
  const resp = await serverFetch(path, options);
  const text = await resp.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (resp.ok) return body;
  const error = (body && body.error) || {};
  if (resp.status === 503 && error.code === "server_busy") {
    throw new ServerBusy(error.message || "server busy", Number(resp.headers.get("Retry-After")) || 5);
  }
  if (resp.status === 502 || resp.status === 504 || (!body && resp.status >= 500)) {
    throw new ServerUnreachable(new Error(`HTTP ${resp.status}`));
  }
  throw new ApiError(resp.status, error.code || "http_error", error.message || text || resp.statusText, path);
}

export const apiJSON = (path, method, payload) =>
  api(path, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) });

export async function iceServers() {
  const body = await api("/api/ice-servers");
  return (body && body.iceServers) || [];
}

/** RTCPeerConnection settings: the server's ICE servers (TURN with fresh credentials); `?relay=1` in the page
 * address forces media through the TURN relay (iceTransportPolicy "relay"), e.g. to test a NAT setup. */
export async function rtcConfiguration() {
  const relay = new URLSearchParams(location.search).get("relay") === "1";
  return { iceServers: await iceServers(), iceTransportPolicy: relay ? "relay" : "all" };
}

/** "relay" when the selected candidate pair goes through a TURN relay, "direct" otherwise, null if unknown. */
export async function mediaRoute(pc) {
  const stats = await pc.getStats();
  let pairId = null;
  stats.forEach((s) => { if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId; });
  const pair = pairId && stats.get(pairId);
  const local = pair && stats.get(pair.localCandidateId);
  if (!local) return null;
  return local.candidateType === "relay" ? "relay" : "direct";
}

/** Show how the call is connected next to the badge, in plain words; the ICE detail goes in the tooltip. */
export async function showRoute(pc) {
  const el = document.getElementById("route");
  if (!el) return;
  const route = pc.connectionState === "connected" ? await mediaRoute(pc) : null;
  el.hidden = !route;
  el.dataset.route = route || "";
  el.textContent = route === "relay" ? "Connected via relay" : route ? "Connected" : "";
  el.title = route === "relay" ? "Audio and transcript go through the TURN relay server (ICE route: relay)."
    : route ? "Audio and transcript go straight to the server (ICE route: host / server-reflexive)." : "";
}

/** The origin the page sends audio to, when it is not the page's own (`?server=` elsewhere); else null. */
export function foreignServerOrigin() {
  if (!SERVER) return null;
  let origin;
  try { origin = new URL(SERVER, location.href).origin; } catch { return SERVER; }
  return origin === location.origin ? null : origin;
}

export class IceFailed extends Error {
  constructor(seconds) {
    super(seconds ? `no connection after ${seconds} s` : "the connection failed");
    this.name = "IceFailed";
    this.seconds = seconds;
  }
}

/**
 * Call `onFail(IceFailed)` once if `pc` is not connected within `timeoutMs`, or its ICE fails before it ever
 * connected (the server answered, but no network path for the media was found). Returns a cancel function.
 */
export function watchConnection(pc, onFail, timeoutMs = 15000) {
  let done = false;
  const stop = () => {
    done = true;
    clearTimeout(timer);
    pc.removeEventListener("connectionstatechange", check);
  };
  const fail = (seconds) => { if (!done) { stop(); onFail(new IceFailed(seconds)); } };
  const timer = setTimeout(() => fail(Math.round(timeoutMs / 1000)), timeoutMs);
  function check() {
    if (pc.connectionState === "connected") stop();
    else if (pc.connectionState === "failed") fail(0);
  }
  pc.addEventListener("connectionstatechange", check);
  check();
  return stop;
}

/** Resolve once ICE gathering is complete (aiortc answers with all candidates and does not trickle). */
export function iceGatheringComplete(pc, timeoutMs = 4000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    function check() { if (pc.iceGatheringState === "complete") done(); }
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/** Offer → POST /api/offer → remote description. Returns the server's answer body ({peer_id, room, …}). */
export async function negotiate(pc, options) {
  const iceErrors = [];
  const onError = (e) => iceErrors.push(e);
  pc.addEventListener("icecandidateerror", onError);
  await pc.setLocalDescription(await pc.createOffer());
  await iceGatheringComplete(pc);
  pc.removeEventListener("icecandidateerror", onError);
  if (pc.getConfiguration().iceTransportPolicy === "relay" && !/ typ relay/.test(pc.localDescription.sdp)) {
    throw relayError(iceErrors);
  }
  const answer = await apiJSON("/api/offer", "POST", {
    sdp: pc.localDescription.sdp, type: "offer", ...options, ...(token ? { token } : {}),
  });
  await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
  return answer;
}

/** Why no TURN relay candidate came, from the browser's icecandidateerror events (STUN error codes). */
function relayError(iceErrors) {
  const err = new Error("no TURN relay candidate");
  err.name = "RelayFailed";
  const auth = iceErrors.find((e) => e.errorCode === 401);
  const other = iceErrors.find((e) => e.errorCode && e.errorCode !== 701);
  err.detail = auth ? "The TURN relay refused the credentials (401 Unauthorized): the server's TURN secret does "
    + "not match the relay's, or the credentials expired."
    : other ? `The TURN relay answered ${other.errorCode} ${other.errorText || ""}.`
    : "The TURN relay could not be reached.";
  return err;
}

/** Our badge vocabulary for an RTCPeerConnection.connectionState. */
export function badgeState(connectionState) {
  switch (connectionState) {
    case "new": case "connecting": return "connecting";
    case "connected": return "live";
    case "disconnected": return "reconnecting";
    default: return "ended"; // failed, closed
  }
}

/** {title, text} in plain words for anything that went wrong while calling. */
export function describeError(err) {
  const name = err && err.name;
  if (name === "IceFailed") {
    const server = SERVER || location.origin;
    return { title: "The audio connection could not be set up",
      text: `The server at ${server} answered, but no network path to it for the call was found`
        + `${err.seconds ? ` within ${err.seconds} s` : ""}. Check that the server's address is reachable from `
        + "this device (callscribe serve --ice-host / --host), or configure a TURN relay "
        + "(CALLSCRIBE_TURN_URLS and CALLSCRIBE_TURN_SECRET, see deploy/README.md), then try again." };
  }
  if (name === "RelayFailed") {
    return { title: "The TURN relay cannot be used", text: err.detail };
  }
  if (name === "ServerUnreachable") {
    return { title: "Cannot reach the callscribe server",
      text: `Cannot reach the callscribe server at ${SERVER || location.origin}. Check that it is running and ` +
        "that your network allows the connection, then try again." };
  }
  if (name === "ServerBusy") {
    const m = /(\d+) calls? in progress/.exec(err.message) || /(\d+) decodes? (?:are )?waiting/.exec(err.message);
    const n = m ? Number(m[1]) : 0;
    const what = !m ? "too many calls"
      : /calls?/.test(m[0]) ? `${n} call${n === 1 ? "" : "s"} in progress` : `${n} transcriptions waiting`;
    return { title: "The server is busy",
      text: `The server is busy (${what}). Please try again in ${err.retryAfter} s.` };
  }
  if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
    return { title: "Microphone access was blocked",
      text: "Microphone access was blocked. Allow the microphone for this site (the icon in the address bar " +
        "or your browser's site settings), then press Start call again." };
  }
  if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError") {
    return { title: "No microphone found",
      text: "No microphone found. Plug one in or pick another input device, then try again." };
  }
  if (name === "NotReadableError" || name === "AbortError") {
    return { title: "The microphone could not be started",
      text: "The microphone could not be started — another application may be using it." };
  }
  if (name === "InsecureContext") {
    return { title: "A secure page is needed",
      text: "Browsers only allow the microphone on secure pages. Open callscribe over https:// (or on localhost)." };
  }
  if (name === "ApiError") {
    return accessError(err) || { title: "The server refused the request",
      text: `${err.message} (${err.code}, HTTP ${err.status})` };
  }
  return { title: "Something went wrong", text: String((err && err.message) || err) };
}

/** `text` as a sentence: capital first letter, a full stop at the end ("" stays ""). */
export const sentence = (text) =>
  (text ? `${text[0].toUpperCase()}${text.slice(1)}${/[.!?]$/.test(text) ? "" : "."}` : "");

/** {title, text} for a request the server refused for want of access (401, 403 forbidden); null otherwise. */
export function accessError(err) {
  if (!err || err.name !== "ApiError") return null;
  const denied = (text) => ({ title: "No access", text });
  if (err.status === 401) {
    if (!token) {
      return denied("This server only lets people in with an invite link. Ask the person who runs it for one, "
        + "then open that link.");
    }
    if (/expire/i.test(err.message)) return denied("This invite link has expired — ask for a new one.");
    return denied("The server did not accept this invite link (it may be incomplete or withdrawn) — ask for a "
      + "new one.");
  }
  if (err.status !== 403 || (err.code !== "forbidden" && err.code !== "http_error")) return null;
  const claims = tokenClaims() || {};
  const said = sentence(err.message);
  if (err.path.startsWith("/api/tokens")) {
    return denied("The link you opened this page with cannot make invite links (a speaker link or the operator "
      + "key can). Ask whoever sent it to invite people.");
  }
  if (err.path.startsWith("/api/offer") && (claims.role === "viewer" || /viewer|watch|listen/i.test(err.message))) {
    return denied("This invite link lets you follow the room, not talk in it — ask for a speaker link to join "
      + "the call.");
  }
  if (claims.room && /is for room/i.test(err.message)) {
    return denied(`This invite link only opens room “${claims.room}” — ask for a link to the room you want.`);
  }
  if (claims.role === "viewer" || /viewer token/i.test(err.message)) {
    return denied("Your viewer link lets you follow and read this room, not change it — ask for a speaker link "
      + "to do that.");
  }
  return denied(`${said || "The server refused the request."} Ask for a link that allows it.`);
}
