// The room view: a listen-only WebRTC connection (data channel, no microphone) that shows the room's backlog
// and then every caller's live transcript. Reconnects by itself; finals already shown are not repeated.

import { ChatView } from "./chat.js";
import { wireExport } from "./export.js";
import { badgeState, negotiate, rtcConfiguration, showRoute } from "./net.js";
import { $, hideBanner, setBadge, showError } from "./ui.js";

const room = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "")
  || new URLSearchParams(location.search).get("room") || "";
const state = { pc: null, dc: null, room, peerId: null, retries: 0, timer: 0 };
window.callscribe = state;

const chat = new ChatView($("#chat"), { empty: $("#chat-empty"), jump: $("#jump"),
  onChange: () => { updateExport(); updateCount(); } });
state.chat = chat;
const updateExport = wireExport($("#export"), chat, () => ({ room: state.room }));

function updateCount() {
  const n = chat.finals().length;
  $("#count").textContent = n ? `${n} message${n === 1 ? "" : "s"}` : "";
}

$("#room-name").textContent = room || "—";
document.title = `${room} — callscribe room`;

async function connect() {
  clearTimeout(state.timer);
  setBadge(state.retries ? "reconnecting" : "connecting");
  let pc = null;
  try {
    pc = new RTCPeerConnection(await rtcConfiguration());
    state.pc = pc;
    const dc = pc.createDataChannel("events");
    state.dc = dc;
    dc.onopen = () => { state.retries = 0; hideBanner(); };
    dc.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.type === "ready") state.peerId = msg.peer_id;
      else chat.handle(msg);
    };
    dc.onclose = () => drop(pc);
    pc.onconnectionstatechange = () => {
      if (state.pc !== pc) return;
      setBadge(badgeState(pc.connectionState));
      showRoute(pc);
      if (pc.connectionState === "failed" || pc.connectionState === "closed") drop(pc);
    };
    await negotiate(pc, { room });
  } catch (err) {
    showError(err);
    drop(pc, err.retryAfter);
  }
}

/** Forget this connection and try again after a back-off (the backlog comes again; the chat skips repeats). */
function drop(pc, after) {
  if (pc && state.pc !== pc) return; // an older connection
  state.pc = null;
  state.dc = null;
  if (pc) pc.close();
  state.retries += 1;
  if (state.retries > 8) {
    setBadge("ended");
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
