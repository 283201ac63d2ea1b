// Talking to the callscribe server: REST calls, ICE servers, the SDP offer (no trickle ICE), plain-words errors.

const params = new URLSearchParams(location.search);
/** Base URL of the server; the page's own origin unless ?server=https://host:port is given. */
export const SERVER = (params.get("server") || "").replace(/\/+$/, "");

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
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/** fetch() against the server; throws ServerUnreachable / ServerBusy / ApiError, returns parsed JSON (or null). */
export async function api(path, options = {}) {
  let resp;
  try {
    resp = await fetch(SERVER + path, { cache: "no-store", ...options });
  } catch (err) {
    throw new ServerUnreachable(err);
  }
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
  throw new ApiError(resp.status, error.code || "http_error", error.message || text || resp.statusText);
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
    sdp: pc.localDescription.sdp, type: "offer", ...options,
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
    return { title: "The server refused the request", text: `${err.message} (${err.code}, HTTP ${err.status})` };
  }
  return { title: "Something went wrong", text: String((err && err.message) || err) };
}
