// The call page: microphone → WebRTC → server; transcript, voice enrollment, profiles and their map, export,
// invite links (when the server has access control on).

import { ChatView } from "./chat.js";
import { wireExport } from "./export.js";
import { wireInvite } from "./invite.js";
import { accessError, api, apiJSON, authHeaders, badgeState, foreignServerOrigin, getToken, negotiate,
  rtcConfiguration, sentence, SERVER, serverUrl, showRoute, tokenClaims, watchConnection } from "./net.js";
import { $, el, hideBanner, setBadge, showBanner, showError } from "./ui.js";
import { loadVoiceMap } from "./voicemap.js";

const AUDIO = { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 };

const state = {
  pc: null, dc: null, ready: false, stream: null, peerId: null, sessionUrl: null, room: null, confirmedServer: null,
  transcribing: false, enrolling: null, audio: null, meterRaf: 0, micStartedAt: null, level: 0,
  redials: 0, redialTimer: 0, lostTimer: 0, resumeTranscribing: false, connected: false, serverLeaving: false,
};
// For tests and the curious: the live objects of this page.
window.callscribe = state;

const chat = new ChatView($("#chat"), { empty: $("#chat-empty"), jump: $("#jump"),
  onChange: () => { updateExport(); updateCount(); },
  onName: (request) => send({ ...request, room: state.room || undefined }),
  onNamed: (ack) => { if (ack.profile_id != null) loadProfiles(); } });
state.chat = chat;
const updateExport = wireExport($("#export"), chat, () => ({ room: state.room, peer_id: state.peerId }));

function updateCount() {
  const n = chat.finals().length;
  $("#count").textContent = n ? `${n} message${n === 1 ? "" : "s"}` : "";
}

// -- call ------------------------------------------------------------------------------------
async function getMic(deviceId) {
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    const err = new Error("insecure context");
    err.name = "InsecureContext";
    throw err;
  }
  const audio = deviceId ? { ...AUDIO, deviceId: { exact: deviceId } } : AUDIO;
  const stream = await navigator.mediaDevices.getUserMedia({ audio, video: false });
  state.micStartedAt = performance.now();
  return stream;
}

async function fillDevices(current) {
  const select = $("#mic");
  try {
    const inputs = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "audioinput");
    if (!inputs.length) return;
    select.replaceChildren(...inputs.map((d, i) =>
      el("option", { value: d.deviceId }, d.label || `Microphone ${i + 1}`)));
    if (current) select.value = current;
  } catch (err) {
    console.warn("enumerateDevices failed", err);
  }
}

function startMeter(stream) {
  stopMeter();
  const AudioCtx = window.AudioContext || window.webkitAudioContext;
  if (!AudioCtx) return;
  const ctx = state.audio || new AudioCtx();
  state.audio = ctx;
  if (ctx.state === "suspended") ctx.resume().catch(() => {});
  const source = ctx.createMediaStreamSource(stream);
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  const fill = $("#meter-fill");
  const meter = $("#meter");
  let shown = 0;
  const tick = () => {
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const v of buf) sum += v * v;
    const rms = Math.sqrt(sum / buf.length);
    const db = 20 * Math.log10(rms + 1e-8);
    const level = Math.max(0, Math.min(100, ((db + 60) / 60) * 100));
    shown = level > shown ? level : shown * 0.85 + level * 0.15; // fast attack, slow release
    state.level = level;
    fill.style.width = `${shown.toFixed(1)}%`;
    meter.setAttribute("aria-valuenow", String(Math.round(shown)));
    state.meterRaf = requestAnimationFrame(tick);
  };
  state.meterSource = source;
  tick();
}

function stopMeter() {
  cancelAnimationFrame(state.meterRaf);
  if (state.meterSource) state.meterSource.disconnect();
  state.meterSource = null;
  $("#meter-fill").style.width = "0%";
}

/** `active`: a call exists; the buttons that talk to the server wait for its `ready` on the data channel. */
function setCallUi(active) {
  $("#start").hidden = active;
  $("#hangup").hidden = !active;
  $("#room").disabled = active;
  const usable = active && state.ready;
  $("#transcribe").disabled = !usable;
  $("#enroll-record").disabled = !usable || Boolean(state.enrolling);
}

function setTranscribing(active) {
  state.transcribing = active;
  const button = $("#transcribe");
  button.textContent = active ? "Stop transcription" : "Start transcription";
  button.setAttribute("aria-pressed", String(active));
  button.classList.toggle("btn-primary", !active && Boolean(state.dc));
}

function send(message) {
  if (state.dc && state.dc.readyState === "open") {
    state.dc.send(JSON.stringify(message));
    return true;
  }
  return false;
}

/** Audio goes to another origin (`?server=`): ask first, naming it. Resolves true when the user agrees. */
function confirmServer() {
  const origin = foreignServerOrigin();
  if (!origin || state.confirmedServer === origin) return Promise.resolve(true);
  const dialog = $("#confirm-server");
  $("#confirm-origin").textContent = origin;
  $("#page-origin").textContent = location.origin;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      const ok = dialog.returnValue === "send";
      if (ok) state.confirmedServer = origin;
      resolve(ok);
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

async function startCall() {
  hideBanner();
  if (!(await confirmServer())) return;
  const room = $("#room").value.trim();
  if (room && !/^[\w.-]{1,64}$/.test(room)) {
    showBanner("Check the room name", "A room name uses letters, digits, '.', '-' and '_' (at most 64).");
    return;
  }
  $("#start").disabled = true;
  setBadge("connecting");
  clearTimeout(state.redialTimer);
  state.redials = 0;
  state.resumeTranscribing = false;
  try {
    const stream = await getMic($("#mic").value);
    state.stream = stream;
    fillDevices(stream.getAudioTracks()[0]?.getSettings().deviceId);
    startMeter(stream);
    await dial(room);
  } catch (err) {
    state.lastError = err.name;
    showError(err);
    await endCall(false);
    setBadge("idle");
  } finally {
    $("#start").disabled = false;
  }
}

/** A peer connection for the microphone stream to the room (`room`: the room asked for, "" = a new one). Whichever
 * node answers holds the call (a cluster may redirect the offer); throws what `negotiate` throws. */
async function dial(room) {
  const stream = state.stream;
  const pc = new RTCPeerConnection(await rtcConfiguration());
  state.pc = pc;
  stream.getAudioTracks().forEach((track) => pc.addTrack(track, stream));
  const dc = pc.createDataChannel("events");
  state.dc = dc;
  dc.onmessage = (e) => onEvent(JSON.parse(e.data));
  dc.onclose = () => {
    if (state.dc !== dc) return;
    if (state.serverLeaving) lost(pc); // the server said it is stopping: call the room again
    else onEnded();
  };
  state.ready = false;
  state.serverLeaving = false;
  pc.onconnectionstatechange = () => {
    if (state.pc !== pc) return;
    setBadge(badgeState(pc.connectionState));
    showRoute(pc);
    clearTimeout(state.lostTimer);
    if (pc.connectionState === "connected") {
      state.connected = true;
      state.redials = 0;
    } else if (state.connected && pc.connectionState === "disconnected") { // no answer from the node: gone?
      state.lostTimer = setTimeout(() => { if (state.pc === pc) lost(pc); }, DISCONNECTED_GRACE_MS);
    } else if (state.connected && pc.connectionState === "failed") {
      lost(pc);
    }
  };
  state.connected = false;
  const lang = $("#language").value || null;
  const name = $("#caller").value.trim();
  const answer = await negotiate(pc, { room: room || undefined, name: name || undefined, language: lang,
    transcribe: false });
  state.peerId = answer.peer_id;
  state.sessionUrl = answer.session_url || null; // hang up there (older servers: /api/peers/{peer_id})
  showRoom(answer.room);
  setCallUi(true);
  // the server answered; ICE may still find no path (e.g. an address this browser cannot reach)
  state.unwatch = watchConnection(pc, (err) => {
    if (state.pc !== pc) return;
    state.lastError = err.name;
    if (state.redials) { // calling again after a lost call: the next try may reach another node
      lost(pc);
      return;
    }
    showError(err);
    endCall(true);
  });
}

/** How long the connection may stay "disconnected" (no answers from the node) before the page calls again. */
const DISCONNECTED_GRACE_MS = 3000;
/** Calls again after a lost connection, then gives up; waits 1, 2, 4, 8, 8, 8 s before them. */
const MAX_REDIALS = 6;

/** The connection of a call that was up is lost (its node died or is stopping, or the network changed): keep the
 * microphone and the transcript, tell the old node if it can still hear (best effort), and call the same room
 * again — any node may take it — after a back-off. */
function lost(pc) {
  if (state.pc !== pc) return; // (null: an attempt that failed before it had a connection)
  state.resumeTranscribing = state.resumeTranscribing || state.transcribing;
  const { hangup } = releaseConnection();
  if (hangup) api(hangup, { method: "DELETE" }).catch(() => {});
  if (pc) {
    pc.close();
    showRoute(pc);
  }
  state.redials += 1;
  if (state.redials > MAX_REDIALS) {
    showBanner("The call was disconnected", "The connection to the server was lost and calling again did not "
      + "work. Press Start call to connect again.");
    endCall(false);
    return;
  }
  setBadge("reconnecting");
  setCallUi(true); // Hang up stays: it ends the attempts
  const wait = Math.min(8, 2 ** (state.redials - 1));
  showBanner("Reconnecting…", `The connection to the server was lost; calling the room again in ${wait} s `
    + `(attempt ${state.redials} of ${MAX_REDIALS}). What was transcribed stays here.`, "warn");
  state.redialTimer = setTimeout(() => redial(state.room), wait * 1000);
}

async function redial(room) {
  if (!state.stream || state.pc) return; // hung up meanwhile
  try {
    await dial(room);
    hideBanner();
  } catch (err) {
    state.lastError = err.name;
    if (accessError(err)) { // the link no longer admits this call: trying again cannot help
      showError(err);
      endCall(false);
      return;
    }
    lost(state.pc);
  }
}

function showRoom(room) {
  state.room = room;
  $("#room").value = room;
  $("#room-name").textContent = room;
  const link = $("#room-link");
  // a new tab does not share this tab's token: the link carries it (the room view takes it out of its address)
  const token = getToken();
  link.href = `${SERVER}/room/${encodeURIComponent(room)}${token ? `?token=${encodeURIComponent(token)}` : ""}`;
  $("#room-info").hidden = false;
}

function onEnded() {
  if (!state.pc) return;
  endCall(false);
}

/** Where this call is ended: the answer's session_url, or /api/peers/{peer_id} from servers without one. */
const HANGUP_WAIT_MS = 3000;

function hangupUrl() {
  if (state.sessionUrl) return state.sessionUrl;
  return state.peerId ? `/api/peers/${encodeURIComponent(state.peerId)}` : null;
}

/** Forget the current connection (the microphone stays): returns it and where to hang it up. */
function releaseConnection() {
  const { pc } = state;
  const hangup = hangupUrl();
  if (state.enrolling) finishEnrollUi("failed", `Enrollment of “${state.enrolling}” was interrupted.`);
  state.pc = null;
  state.dc = null;
  state.ready = false;
  state.connected = false;
  state.peerId = null;
  state.sessionUrl = null;
  if (state.unwatch) state.unwatch();
  chat.dropPending(); // utterances cut off by the end of the connection get no final
  setTranscribing(false);
  return { pc, hangup };
}

async function endCall(tellServer = true) {
  const { stream } = state;
  clearTimeout(state.redialTimer);
  clearTimeout(state.lostTimer);
  state.redials = 0;
  state.resumeTranscribing = false;
  const { pc, hangup } = releaseConnection();
  stopMeter();
  if (stream) stream.getTracks().forEach((t) => t.stop());
  state.stream = null;
  setCallUi(false);
  if (pc) setBadge("ended");
  // hang up before closing the connection: a closed data channel ends the call on its own, and a DELETE that
  // arrives after that finds no call (404); wait at most HANGUP_WAIT_MS for the server
  if (tellServer && hangup) {
    const bye = api(hangup, { method: "DELETE" }).catch(() => {});
    await Promise.race([bye, new Promise((done) => { setTimeout(done, HANGUP_WAIT_MS); })]);
  }
  if (pc) {
    pc.close(); // fires no connectionstatechange
    showRoute(pc);
  }
}

function onEvent(msg) {
  if (chat.handle(msg)) { // bubbles, relabels and the answers to naming a speaker
    if (msg.type === "speaker_relabeled" && msg.speaker_kind === "profile") loadProfiles();
    return;
  }
  switch (msg.type) {
    case "ready":
      state.peerId = msg.peer_id;
      chat.allowNaming(!Array.isArray(msg.grants) || msg.grants.includes("name_speaker"));
      state.ready = true;
      setCallUi(Boolean(state.pc));
      showRoom(msg.room);
      setTranscribing(Boolean(msg.transcribing));
      if (!msg.transcribing && ($("#autostart").checked || state.resumeTranscribing) && !state.enrolling) {
        send({ type: "transcribe_start" }); // a call placed again after a lost one goes on transcribing
      }
      state.resumeTranscribing = false;
      break;
    case "transcription":
      setTranscribing(msg.active);
      break;
    case "enrollment_started":
      break;
    case "enrollment_completed":
      finishEnrollUi(msg.similar_to ? "warn" : "done",
        `${msg.name} enrolled — ${Number(msg.speech_s).toFixed(1)} s of speech.${similarNote(msg)}`);
      if (msg.similar_to) $("#enroll-name").value = "";
      loadProfiles();
      break;
    case "enrollment_failed":
      finishEnrollUi("failed", `Could not enroll ${msg.name}: ${msg.reason}.`);
      break;
    case "error":
      if (msg.code === "server_shutdown") {
        state.serverLeaving = true; // its last finals still come; when it closes the channel, call again
      } else if (msg.code === "idle_timeout") {
        showBanner("The call ended", `Nothing was said for a while (${msg.message}), so the server closed the call.`,
          "info");
      } else if (msg.code === "name_taken" && state.enrolling) { // enrolled meanwhile, e.g. from another page
        finishEnrollUi("failed", `Could not enroll ${state.enrolling}: ${sentence(msg.message)}`);
        loadProfiles();
      } else if (msg.code === "forbidden" || msg.code === "unauthorized") {
        if (state.enrolling) {
          finishEnrollUi("failed", `Could not enroll ${state.enrolling}: this link does not allow it.`);
        }
        showBanner("Your invite link does not allow that",
          `${sentence(msg.message)} Ask the organiser for a link that does.`.trim());
      } else {
        showBanner("The server reported a problem", `${msg.message} (${msg.code})`);
      }
      break;
    default:
      break;
  }
}

function toggleTranscription(on = !state.transcribing) {
  send({ type: on ? "transcribe_start" : "transcribe_stop" });
}

async function changeMic() {
  if (!state.pc) return;
  const deviceId = $("#mic").value;
  try {
    const stream = await getMic(deviceId);
    const track = stream.getAudioTracks()[0];
    const sender = state.pc.getSenders().find((s) => s.track && s.track.kind === "audio");
    if (sender) await sender.replaceTrack(track);
    state.stream.getTracks().forEach((t) => t.stop());
    state.stream = stream;
    startMeter(stream);
  } catch (err) {
    showError(err);
  }
}

// -- enrollment ------------------------------------------------------------------------------
let enrollTimer = 0;

/** The warning for a new voice that is very close to another profile's (`similar_to`, `similarity`). */
function similarNote(result) {
  if (!result.similar_to) return "";
  const how = result.similarity != null ? ` (similarity ${Number(result.similarity).toFixed(2)})` : "";
  return ` This voice sounds like ${result.similar_to}${how} — same person?`;
}

function enrollStatus(kind, text) {
  const status = $("#enroll-status");
  status.dataset.state = kind;
  status.textContent = text;
  status.hidden = false;
}

function enrollName() {
  const name = $("#enroll-name").value.trim();
  if (!name) {
    showBanner("Who is speaking?", "Type the speaker's name first.", "info");
    $("#enroll-name").focus();
    return null;
  }
  if (name.toLowerCase() === "unknown") {
    showBanner("Pick another name", "“unknown” is reserved for voices that match no profile.", "info");
    return null;
  }
  return name;
}

// -- an existing name: add to that voice only when asked (never silently) ----------------------
let enrolledNames = new Map(); // lower-case name -> profile name, from the last profile list

function existingVoice(name) {
  return enrolledNames.get(name.trim().toLowerCase()) || null;
}

function updateAddChoice() {
  const existing = existingVoice($("#enroll-name").value);
  $("#enroll-add-row").hidden = !existing;
  if (existing) $("#enroll-add-name").textContent = existing;
  else $("#enroll-add").checked = false;
}

/** True when the enrollment may go ahead: a new name, or an existing one with "add" ticked. */
function addChoiceAllows(name) {
  const existing = existingVoice(name);
  if (!existing || $("#enroll-add").checked) return true;
  enrollStatus("failed", `A voice named ${existing} is already enrolled. Tick “Add to the voice ${existing}” to ` +
    "add this speech to it, or choose another name.");
  return false;
}

function recordVoice() {
  if (state.enrolling) { // the button reads "Finish now"
    stopRecording();
    return;
  }
  const name = enrollName();
  if (!name || !addChoiceAllows(name)) return;
  if (!send({ type: "enroll_start", name, add: Boolean(existingVoice(name)) })) return;
  const seconds = Number($("#enroll-secs").value);
  state.enrolling = name;
  const began = performance.now();
  const button = $("#enroll-record");
  button.querySelector("span:last-child").textContent = "Finish now";
  $("#enroll-progress").hidden = false;
  $("#enroll-name").disabled = true;
  const tick = () => {
    const elapsed = (performance.now() - began) / 1000;
    const left = Math.max(0, seconds - elapsed);
    $("#enroll-bar").style.width = `${Math.min(100, (elapsed / seconds) * 100)}%`;
    enrollStatus("recording", `● Recording ${name} — speak naturally… ${Math.ceil(left)} s left`);
    if (left <= 0) stopRecording();
  };
  tick();
  enrollTimer = setInterval(tick, 200);
}

function stopRecording() {
  clearInterval(enrollTimer);
  $("#enroll-bar").style.width = "100%";
  $("#enroll-record").disabled = true;
  enrollStatus("processing", `Processing ${state.enrolling}'s voice…`);
  send({ type: "enroll_stop" });
}

function finishEnrollUi(kind, text) {
  clearInterval(enrollTimer);
  state.enrolling = null;
  enrollStatus(kind, text);
  $("#enroll-progress").hidden = true;
  $("#enroll-bar").style.width = "0%";
  $("#enroll-name").disabled = false;
  const button = $("#enroll-record");
  button.querySelector("span:last-child").textContent = "Record voice from the call";
  button.disabled = !state.pc || !state.ready;
  if (kind === "done") $("#enroll-name").value = "";
}

async function uploadVoice() {
  const name = enrollName();
  const file = $("#enroll-file").files[0];
  if (!name || !addChoiceAllows(name)) return;
  if (!file) {
    showBanner("Choose a recording", "Pick an audio file of the speaker (3 s of speech or more).", "info");
    return;
  }
  const existing = existingVoice(name);
  const form = new FormData();
  if (!existing) form.append("name", name);
  form.append("audio", file, file.name);
  const button = $("#enroll-upload");
  button.disabled = true;
  enrollStatus("processing", `Uploading ${file.name} for ${name}…`);
  try {
    const path = existing ? `/api/profiles/${encodeURIComponent(existing)}/audio` : "/api/profiles";
    const body = await api(path, { method: "POST", body: form });
    enrollStatus(body.similar_to ? "warn" : "done",
      `${body.profile.name} enrolled from ${file.name} — ${body.speech_s.toFixed(1)} s of speech.${similarNote(body)}`);
    $("#enroll-file").value = "";
    $("#enroll-name").value = "";
    loadProfiles();
  } catch (err) {
    const denied = accessError(err);
    if (denied) enrollStatus("failed", `Could not enroll ${name}: ${denied.text}`);
    else if (err.name === "ApiError") enrollStatus("failed", `Could not enroll ${name}: ${err.message}`);
    else { enrollStatus("failed", `Could not enroll ${name}.`); showError(err); }
  } finally {
    button.disabled = false;
  }
}

// -- profiles --------------------------------------------------------------------------------
async function loadProfiles() {
  const list = $("#profiles");
  let profiles;
  try {
    profiles = (await api("/api/profiles")).profiles;
  } catch (err) {
    const denied = accessError(err);
    list.replaceChildren(el("li", { class: "profiles-empty" },
      denied ? `Voice profiles need access. ${denied.text}` : "Voice profiles are unavailable right now."));
    if (denied && getToken()) showBanner(denied.title, denied.text); // the link this page was opened with is refused
    $("#voice-map-section").hidden = true;
    return;
  }
  enrolledNames = new Map(profiles.map((p) => [p.name.toLowerCase(), p.name]));
  updateAddChoice();
  loadVoiceMap($("#voice-map"), $("#voice-map-section"));
  if (!profiles.length) {
    list.replaceChildren(el("li", { class: "profiles-empty" }, "No voices yet — enroll one above."));
    return;
  }
  list.replaceChildren(...profiles.map(profileRow));
}

function profileRow(p) {
  const meta = `${p.speech_s.toFixed(1)} s of speech · ${p.enrollments} enrollment${p.enrollments === 1 ? "" : "s"}`;
  const row = el("li", { dataset: { profile: p.name } });
  const show = () => {
    row.replaceChildren(
      el("div", { class: "pavatar", "aria-hidden": "true" }, [...p.name][0].toUpperCase()),
      el("div", { class: "who" }, el("div", { class: "pname" }, p.name), el("div", { class: "pmeta" }, meta)),
      el("div", { class: "pactions" },
        el("button", { class: "btn btn-ghost btn-sm", type: "button", "data-action": "rename", onclick: edit },
          "Rename"),
        el("button", { class: "btn btn-ghost btn-sm", type: "button", "data-action": "delete", onclick: remove },
          "Delete")));
  };
  const edit = () => {
    const input = el("input", { class: "rename-input", type: "text", value: p.name, maxlength: 64,
      "aria-label": `New name for ${p.name}` });
    const save = async () => {
      const name = input.value.trim();
      if (!name || name === p.name) { show(); return; }
      try {
        await apiJSON(`/api/profiles/${encodeURIComponent(p.name)}`, "PATCH", { name });
        loadProfiles();
      } catch (err) {
        showBanner("Could not rename", err.name === "ApiError" ? err.message : String(err.message));
      }
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") save();
      if (e.key === "Escape") { e.stopPropagation(); show(); }
    });
    row.replaceChildren(el("div", { class: "who" }, input), el("div", { class: "pactions" },
      el("button", { class: "btn btn-primary btn-sm", type: "button", "data-action": "save", onclick: save }, "Save"),
      el("button", { class: "btn btn-ghost btn-sm", type: "button", onclick: show }, "Cancel")));
    input.focus();
    input.select();
  };
  const remove = async (e) => {
    const button = e.currentTarget;
    if (button.dataset.confirm !== "1") { // two-step, no blocking dialog
      button.dataset.confirm = "1";
      button.textContent = "Confirm delete";
      button.className = "btn btn-danger btn-sm";
      setTimeout(() => { if (button.isConnected) show(); }, 4000);
      return;
    }
    try {
      await api(`/api/profiles/${encodeURIComponent(p.name)}`, { method: "DELETE" });
    } catch (err) {
      showBanner("Could not delete", err.message);
    }
    loadProfiles();
  };
  show();
  return row;
}

// -- wiring ----------------------------------------------------------------------------------
$("#start").addEventListener("click", startCall);
$("#hangup").addEventListener("click", () => endCall(true));
$("#transcribe").addEventListener("click", () => toggleTranscription());
$("#mic").addEventListener("change", changeMic);
$("#language").addEventListener("change", () => send({ type: "session", language: $("#language").value || null }));
$("#caller").addEventListener("change", () => {
  const name = $("#caller").value.trim();
  if (name) send({ type: "session", language: $("#language").value || null, name });
});
$("#enroll-record").addEventListener("click", recordVoice);
$("#enroll-upload").addEventListener("click", uploadVoice);
$("#enroll-name").addEventListener("input", updateAddChoice);
$("#enroll-secs").addEventListener("input", () => { $("#enroll-secs-label").textContent = `${$("#enroll-secs").value} s`; });
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && state.transcribing && !e.defaultPrevented && !$("#confirm-server").open) {
    toggleTranscription(false);
    showBanner("Transcription stopped", "Press Start transcription to continue.", "info");
  }
});
window.addEventListener("pagehide", () => {
  const hangup = hangupUrl();
  if (hangup) {
    fetch(serverUrl(hangup), { method: "DELETE", keepalive: true, headers: authHeaders() }).catch(() => {});
  }
});

wireInvite({ room: () => state.room || $("#room").value.trim(), onToken: loadProfiles });
$("#history-link").href = `${SERVER}/static/history.html`;

// the room from the address, else the one an invite link is for
const room = new URLSearchParams(location.search).get("room") || (tokenClaims() || {}).room;
if (room) $("#room").value = room;
setBadge("idle");
loadProfiles();
