// The room view: a listen-only WebRTC connection (data channel, no microphone) that shows the room's backlog
// and then every caller's live transcript. Reconnects by itself; finals already shown are not repeated.
// The badge says "Live" only while connected and a call is in the room (protocol 3 `room` events: `callers`).
// An invite link's token (`?token=`) goes with the offer; when the server refuses it (401/403) the page says so
// and stops trying. The header links to the room's history.

import { ChatView } from "./chat.js";
import { wireExport } from "./export.js";
import { accessError, badgeState, negotiate, rtcConfiguration, SERVER, showRoute, watchConnection } from "./net.js";
import { $, hideBanner, setBadge, showError } from "./ui.js";

const room = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "")
  || new URLSearchParams(location.search).get("room") || "";
const state = { pc: null, dc: null, room, peerId: null, retries: 0, timer: 0, protocol: null, callers: null,
  hadCallers: false, names: [] };
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
  const badge = pc ? badgeState(pc.connectionState) : "reconnecting";
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
  state.retries += 1;
  if (state.retries > 8) {
    setBadge("ended", "Disconnected");
    return;
  }
  setBadge("reconnecting");
  state.timer = setTimeout(connect, (after || Math.min(15, 2 ** Math.min(state.retries, 4))) * 1000);
}

if (!/^[\w.-]{1,64}$/.test(room)) {
  showError(new Error(`“${room}” is not a room name. Open a link like /room/standup.`));
  setBadge("ended");
} else {
  connect();
}
window.addEventListener("pagehide", () => state.pc && state.pc.close());
