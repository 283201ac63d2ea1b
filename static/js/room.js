// The room view: a listen-only WebRTC connection (data channel, no microphone) that shows the room's backlog
// and then every caller's live transcript. Reconnects by itself; finals already shown are not repeated.
// The badge says "Live" only while connected and a call is in the room (protocol 3 `room` events: `callers`).
// An invite link's token (`?token=`) goes with the offer; when the server refuses it (401/403) the page says so
// and stops trying. The header links to the room's history.
// With `?via=sse` it follows the room over server-sent events instead (GET /api/rooms/{room}/events: no WebRTC
// peer, so a room can have thousands of such viewers; read-only, so speakers cannot be named from it).

import { ChatView } from "./chat.js";
import { wireExport } from "./export.js";
import {
  accessError, badgeState, negotiate, responseError, rtcConfiguration, SERVER, serverFetch, showRoute, watchConnection,
} from "./net.js";
import { readEventStream } from "./sse.js";
import { $, hideBanner, setBadge, showError } from "./ui.js";

const room = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "")
  || new URLSearchParams(location.search).get("room") || "";
const VIA_SSE = new URLSearchParams(location.search).get("via") === "sse";
const state = { pc: null, dc: null, stream: null, streaming: false, room, peerId: null, retries: 0, timer: 0,
  protocol: null, callers: null, hadCallers: false, names: [] };
window.callscribe = state;

const send = (message) => {
  if (!state.dc || state.dc.readyState !== "open") return false;
  state.dc.send(JSON.stringify(message));
  return true;
};
const chat = new ChatView($("#chat"), { empty: $("#chat-empty"), jump: $("#jump"),
  onChange: () => { updateExport(); updateCount(); },
  onName: (request) => send({ ...request, room: state.room }) });
state.chat = chat;
const updateExport = wireExport($("#export"), chat, () => ({ room: state.room }));

function updateCount() {
  const n = chat.finals().length;
  $("#count").textContent = n ? `${n} message${n === 1 ? "" : "s"}` : "";
}

/** The badge from the connection state and, once the server said so, the number of calls in the room. */
function updateBadge() {
  const pc = state.pc;
  const stream = state.streaming ? "live" : "reconnecting";
  const badge = VIA_SSE ? stream : pc ? badgeState(pc.connectionState) : "reconnecting";
  const callers = $("#callers");
  if (badge !== "live") {
    setBadge(badge);
  } else if (state.protocol == null) {
    setBadge("connecting"); // ICE is up; the server's `ready` is still to come
  } else if (state.callers == null) {
    setBadge(state.protocol >= 3 ? "connected" : "live"); // protocol 2 servers say nothing about calls
  } else if (state.callers > 0) {
    setBadge("live");
  } else {
    setBadge("waiting", state.hadCallers ? "Call ended" : "Waiting for a caller");
  }
  const named = state.names.filter(Boolean);
  callers.hidden = badge !== "live" || !state.callers;
  callers.textContent = state.callers
    ? `${state.callers} ${state.callers === 1 ? "caller" : "callers"}${named.length ? `: ${named.join(", ")}` : ""}`
    : "";
}

function onEvent(msg) {
  if (chat.handle(msg)) return;
  if (msg.type === "ready") {
    state.peerId = msg.peer_id;
    chat.allowNaming(!Array.isArray(msg.grants) || msg.grants.includes("name_speaker")); // a viewer link may not
    state.protocol = Number(msg.protocol) || 2;
    state.callers = null; // a new session: the server says again who is in the room
  } else if (msg.type === "room") {
    state.callers = Number(msg.callers) || 0;
    state.names = Array.isArray(msg.names) ? msg.names : [];
    if (state.callers > 0) state.hadCallers = true;
  } else if (msg.type === "error") {
    showError(new Error(`${msg.message} (${msg.code})`));
  }
  updateBadge();
}
state.onEvent = onEvent; // for tests: feed events as if they came from the server

$("#room-name").textContent = room || "—";
document.title = `${room} — callscribe room`;
if (room) $("#history-link").href = `${SERVER}/static/history.html?room=${encodeURIComponent(room)}`;

async function connect() {
  clearTimeout(state.timer);
  setBadge(state.retries ? "reconnecting" : "connecting");
  let pc = null;
  try {
    pc = new RTCPeerConnection(await rtcConfiguration());
    state.pc = pc;
    state.protocol = null;
    state.callers = null;
    const dc = pc.createDataChannel("events");
    state.dc = dc;
    dc.onopen = () => { state.retries = 0; hideBanner(); };
    dc.onmessage = (e) => onEvent(JSON.parse(e.data));
    dc.onclose = () => drop(pc);
    pc.onconnectionstatechange = () => {
      if (state.pc !== pc) return;
      updateBadge();
      showRoute(pc);
      if (pc.connectionState === "failed" || pc.connectionState === "closed") drop(pc);
    };
    await negotiate(pc, { room });
    state.unwatch = watchConnection(pc, (err) => {
      if (state.pc !== pc) return;
      showError(err);
      drop(pc);
    });
  } catch (err) {
    showError(err);
    if (accessError(err)) { // trying again with the same link cannot help
      stop(pc);
      setBadge("ended", "No access");
      return;
    }
    drop(pc, err.retryAfter);
  }
}

/** Follow the room over server-sent events: the same messages as the data channel, minus `ready`. */
async function follow() {
  clearTimeout(state.timer);
  setBadge(state.retries ? "reconnecting" : "connecting");
  const abort = new AbortController();
  state.stream = abort;
  const path = `/api/rooms/${encodeURIComponent(room)}/events`;
  let retryAfter = 0;
  try {
    const resp = await serverFetch(path, { headers: { Accept: "text/event-stream" }, signal: abort.signal });
    if (!resp.ok) {
      retryAfter = Number(resp.headers.get("Retry-After")) || 0;
      throw responseError(resp, await resp.text(), path);
    }
    state.streaming = true;
    state.retries = 0;
    state.protocol = 3;
    state.callers = null;
    chat.allowNaming(false);
    hideBanner();
    showStreamRoute(true);
    updateBadge();
    await readEventStream(resp, (type, data) => {
      let msg;
      try { msg = JSON.parse(data); } catch { return false; }
      if (type === "error") { // e.g. too_slow: this viewer fell behind; the stream ends, reconnecting resumes it
        showError(new Error(`${msg.message} (${msg.code})`));
        return true;
      }
      onEvent(msg);
      return false;
    });
  } catch (err) {
    if (abort.signal.aborted) return;
    showError(err);
    if (accessError(err)) {
      stopStream(abort);
      setBadge("ended", "No access");
      return;
    }
  }
  if (state.stream === abort) {
    stopStream(abort);
    retry(retryAfter);
  }
}

function showStreamRoute(on) {
  const el = $("#route");
  el.hidden = !on;
  el.dataset.route = on ? "sse" : "";
  el.textContent = on ? "Read-only stream" : "";
  el.title = on ? "Events come as server-sent events over HTTP (no WebRTC connection)." : "";
}

/** Forget this event stream (no more reconnecting on its behalf). */
function stopStream(abort) {
  if (state.stream !== abort) return;
  state.stream = null;
  state.streaming = false;
  abort.abort();
  chat.dropPending();
  showStreamRoute(false);
}

/** Forget this connection (no more reconnecting on its behalf). */
function stop(pc) {
  state.pc = null;
  state.dc = null;
  if (state.unwatch) state.unwatch();
  chat.dropPending(); // no final will come for what was being said
  if (pc) pc.close();
  showRoute({ connectionState: "closed" });
}

/** Forget this connection and try again after a back-off (the backlog comes again; the chat skips repeats). */
function drop(pc, after) {
  if (pc && state.pc !== pc) return; // an older connection
  stop(pc);
  retry(after);
}

/** Connect again (WebRTC or the event stream) after `after` seconds, or a back-off; give up after 8 tries. */
function retry(after) {
  state.retries += 1;
  if (state.retries > 8) {
    setBadge("ended", "Disconnected");
    return;
  }
  setBadge("reconnecting");
  state.timer = setTimeout(VIA_SSE ? follow : connect, (after || Math.min(15, 2 ** Math.min(state.retries, 4))) * 1000);
}

if (!/^[\w.-]{1,64}$/.test(room)) {
  showError(new Error(`“${room}” is not a room name. Open a link like /room/standup.`));
  setBadge("ended");
} else if (VIA_SSE) {
  follow();
} else {
  connect();
}
window.addEventListener("pagehide", () => {
  if (state.pc) state.pc.close();
  if (state.stream) state.stream.abort();
});
