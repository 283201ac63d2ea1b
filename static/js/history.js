// The history page: past sessions, newest first and paged ("Older"); one opened reads as the same chat as live
// (chat.js), exports through the server's transcript route (export.js), plays its recording, and can be deleted
// after a confirmation. `?room=` shows one room's sessions, `?limit=` sets the page size; `#session=ID` opens one.

import { ChatView, speakerKey } from "./chat.js";
import { wireSessionExport } from "./export.js";
import { api, describeError, responseError, SERVER, serverFetch, tokenClaims } from "./net.js";
import { clockTime, dayKey, dayName, dayTime, duration, plural } from "./format.js";
import { $, askDialog, el, hideBanner, showBanner, showError } from "./ui.js";

const COLOURS = 8;
const params = new URLSearchParams(location.search);
/** Sessions per page (`?limit=` between 1 and 200, default 20). */
const PAGE_SIZE = Math.min(200, Math.max(1, Math.round(Number(params.get("limit"))) || 20));

const state = {
  room: params.get("room") || (tokenClaims() || {}).room || "", sessions: [], total: 0, loading: false,
  current: null, opening: 0, audioUrl: null, lastDay: null,
};
window.callscribe = state; // for tests and the curious

const chat = new ChatView($("#chat"), { empty: $("#chat-empty"), onChange: updateCount });
state.chat = chat;
const updateExport = wireSessionExport($("#export"), () => state.current);

function updateCount() {
  const n = chat.finals().length;
  $("#count").textContent = state.current && n ? plural(n, "message") : "";
}

const started = (s) => new Date((Number(s.started_at) || 0) * 1000);
const live = (s) => s.ended_at == null;

// -- the list --------------------------------------------------------------------------------
function showFilter() {
  const room = state.room;
  $("#filter-room").value = room;
  $("#filter-clear").hidden = !room;
  $("#room-filter-name").hidden = !room;
  $("#room-filter-name").textContent = room;
  const link = $("#room-view-link");
  link.hidden = !room;
  link.href = room ? `${SERVER}/room/${encodeURIComponent(room)}` : "#";
  $("#list-title").textContent = room ? "Sessions in this room" : "Past sessions";
  document.title = room ? `${room} — history — callscribe` : "History — callscribe";
  const url = new URL(location.href);
  if (room) url.searchParams.set("room", room); else url.searchParams.delete("room");
  history.replaceState(history.state, "", url.pathname + url.search + url.hash);
}

function sessionItem(s) {
  const when = started(s);
  const speakers = Array.isArray(s.speakers) ? s.speakers : [];
  const facts = [live(s) ? "in progress" : duration(s.duration_s), plural(Number(s.utterances) || 0, "message"),
    s.caller].filter(Boolean);
  return el("button", { class: "session", type: "button", dataset: { sessionId: s.id },
    "aria-current": state.current && state.current.id === s.id ? "true" : null, onclick: () => openSession(s.id) },
  el("div", { class: "s-top" },
    el("code", { class: "s-room" }, s.room || "—"),
    live(s) ? el("span", { class: "pill pill-live" }, "Live") : null,
    el("span", { class: "spacer" }),
    el("time", { class: "s-time", datetime: when.toISOString() }, clockTime(when))),
  el("div", { class: "s-meta" }, facts.join(" · ")),
  speakers.length
    ? el("div", { class: "s-speakers" }, speakers.map((name) => el("span", { class: "chip" }, name)))
    : el("div", { class: "s-speakers none" }, "Nobody spoke"));
}

function appendSessions(sessions) {
  const list = $("#sessions");
  for (const s of sessions) {
    const date = started(s);
    const key = dayKey(date);
    if (key !== state.lastDay) {
      list.append(el("h3", { class: "day" }, dayName(date)));
      state.lastDay = key;
    }
    list.append(sessionItem(s));
  }
}

function updateList() {
  const n = state.sessions.length;
  $("#total").textContent = state.total ? plural(state.total, "session") : "";
  $("#older").hidden = n >= state.total || n === 0;
  const empty = $("#sessions-empty");
  empty.hidden = n > 0;
  if (!n) {
    empty.textContent = state.room
      ? `No sessions in room “${state.room}” yet. A call appears here once it has started.`
      : "No sessions yet. Every call appears here, with its transcript, once it has started.";
  }
}

/** Load the next page of sessions (`fresh`: start again from the newest). */
async function loadSessions(fresh = false) {
  if (state.loading) return;
  state.loading = true;
  const older = $("#older");
  older.disabled = true;
  older.setAttribute("aria-busy", "true");
  if (fresh) {
    state.sessions = [];
    state.total = 0;
    state.lastDay = null;
    $("#sessions").replaceChildren();
  }
  const query = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(state.sessions.length) });
  if (state.room) query.set("room", state.room);
  try {
    const page = await api(`/api/sessions?${query}`);
    const known = new Set(state.sessions.map((s) => s.id));
    const sessions = (page.sessions || []).filter((s) => !known.has(s.id)); // one may have started meanwhile
    state.sessions.push(...sessions);
    state.total = Math.max(Number(page.total) || 0, state.sessions.length);
    appendSessions(sessions);
    updateList();
  } catch (err) {
    const { title, text } = describeError(err);
    $("#sessions-empty").hidden = false;
    $("#sessions-empty").textContent = err.name === "ApiError" && err.status === 404
      ? "This server keeps no session history." : text;
    $("#older").hidden = true;
    showBanner(title, text);
  } finally {
    state.loading = false;
    older.disabled = false;
    older.removeAttribute("aria-busy");
  }
}

// -- one session -----------------------------------------------------------------------------
function markCurrent(id) {
  document.querySelectorAll("#sessions .session").forEach((b) => {
    if (b.dataset.sessionId === String(id)) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  });
}

function emptyChat(title, text) {
  $("#chat-empty-title").textContent = title;
  $("#chat-empty-text").textContent = text;
}

function stopAudio() {
  const player = $("#player");
  player.pause();
  player.removeAttribute("src");
  player.hidden = true;
  if (state.audioUrl) URL.revokeObjectURL(state.audioUrl);
  state.audioUrl = null;
}

function closeSession() {
  state.opening += 1;
  state.current = null;
  stopAudio();
  chat.clear();
  emptyChat("Pick a session", "Choose a past call on the left to read its transcript, export it or delete it.");
  $("#session-info").hidden = true;
  $("#chat-title").textContent = "Transcript";
  $("#layout").dataset.view = "list";
  markCurrent(null);
  updateExport();
  updateCount();
  const url = new URL(location.href);
  url.hash = "";
  history.replaceState(history.state, "", url.pathname + url.search);
}

function speakerChip(s) {
  const slot = (chat.speakers.get(speakerKey(s)) || {}).slot;
  const unknown = speakerKey(s) === "unknown";
  const talk = Number(s.talk_s ?? s.talk_time_s) || 0;
  const turns = Number(s.turns) || 0;
  return el("li", { class: ["spk-total", unknown ? "unknown" : slot != null ? `spk-${slot % COLOURS}` : ""].join(" "),
    dataset: { speaker: s.speaker } },
  el("span", { class: "dot", "aria-hidden": "true" }),
  el("span", { class: "who" }, s.speaker || "unknown"),
  el("span", { class: "how" }, `${duration(talk)} · ${plural(turns, "turn")}`));
}

function showInfo(s, speakers) {
  const when = started(s);
  $("#chat-title").textContent = "Transcript";
  $("#info-room").textContent = s.room || "—";
  const end = s.ended_at != null ? new Date(s.ended_at * 1000) : null;
  const [from, to] = [clockTime(when), end && clockTime(end)];
  $("#info-when").textContent = `${dayName(when)}, ${from}${to && to !== from ? `–${to}` : ""}`;
  $("#info-duration").textContent = live(s) ? "in progress" : duration(s.duration_s);
  $("#info-caller").hidden = !s.caller;
  $("#info-caller").textContent = s.caller ? `called by ${s.caller}` : "";
  $("#info-live").hidden = !live(s);
  $("#info-live").href = `${SERVER}/room/${encodeURIComponent(s.room || "")}`;
  $("#listen").hidden = !s.has_audio;
  $("#delete").hidden = (tokenClaims() || {}).role === "viewer"; // deleting needs a speaker link (or the key)
  $("#listen").disabled = false;
  $("#info-speakers").replaceChildren(...speakers.map(speakerChip));
  $("#info-speakers").hidden = speakers.length === 0;
  $("#session-info").hidden = false;
}

async function openSession(id) {
  const ticket = ++state.opening;
  hideBanner();
  markCurrent(id);
  stopAudio();
  state.current = null;
  updateExport();
  let body;
  try {
    body = await api(`/api/sessions/${encodeURIComponent(id)}`);
  } catch (err) {
    if (ticket !== state.opening) return;
    if (err.name === "ApiError" && err.status === 404) {
      showBanner("This session is gone", "It was deleted, or it was kept for less time than it is old.", "info");
      dropFromList(id);
      closeSession();
    } else {
      showError(err);
    }
    return;
  }
  if (ticket !== state.opening) return; // another session was picked meanwhile
  const s = body.session;
  state.current = s;
  const utterances = (body.utterances || []).filter((u) => (u.text || "").trim());
  emptyChat("Nothing was said", "This call has no transcript: nobody spoke, or only noise was heard.");
  chat.showStored(utterances);
  showInfo(s, body.speakers || []);
  $("#layout").dataset.view = "detail";
  updateExport();
  updateCount();
  const url = new URL(location.href);
  url.hash = `session=${encodeURIComponent(s.id)}`;
  history.replaceState(history.state, "", url.pathname + url.search + url.hash);
}

/** Fetch the recording (with the access token, which an <audio src> cannot send) and play it. */
async function listen() {
  const s = state.current;
  if (!s) return;
  const button = $("#listen");
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    const path = `/api/sessions/${encodeURIComponent(s.id)}/audio`;
    const resp = await serverFetch(path);
    if (!resp.ok) throw responseError(resp, await resp.text(), path);
    const blob = await resp.blob();
    if (state.current !== s) return;
    stopAudio();
    state.audioUrl = URL.createObjectURL(blob);
    const player = $("#player");
    player.src = state.audioUrl;
    player.hidden = false;
    button.hidden = true;
    player.play().catch(() => {}); // autoplay may be refused; the controls are there
  } catch (err) {
    showError(err);
    button.disabled = false;
  } finally {
    button.removeAttribute("aria-busy");
  }
}

function dropFromList(id) {
  const before = state.sessions.length;
  state.sessions = state.sessions.filter((s) => s.id !== id);
  if (state.sessions.length < before) state.total = Math.max(0, state.total - 1);
  const item = document.querySelector(`#sessions .session[data-session-id="${CSS.escape(String(id))}"]`);
  if (item) {
    const day = item.previousElementSibling;
    const next = item.nextElementSibling;
    item.remove();
    // a day heading with no session under it goes too
    if (day && day.matches("h3.day") && (!next || next.matches("h3.day"))) {
      if (!next) state.lastDay = null;
      day.remove();
    }
  }
  updateList();
}

function confirmDelete(s) {
  const dialog = $("#confirm-delete");
  $("#delete-what").textContent = s.room || "this call";
  const when = started(s);
  const day = dayName(when);
  $("#delete-when").textContent = `from ${/^(Today|Yesterday)$/.test(day) ? day.toLowerCase() : day}, `
    + clockTime(when);
  $("#delete-audio").hidden = !s.has_audio;
  return askDialog(dialog).then((answer) => answer === "delete");
}

async function deleteSession() {
  const s = state.current;
  if (!s || !(await confirmDelete(s))) return;
  const button = $("#delete");
  button.disabled = true;
  try {
    await api(`/api/sessions/${encodeURIComponent(s.id)}`, { method: "DELETE" });
    dropFromList(s.id);
    if (state.current === s) closeSession();
    showBanner("Session deleted", `The transcript of ${s.room || "the call"} is gone from the server.`, "info");
    if (state.sessions.length < state.total && state.sessions.length < PAGE_SIZE) loadSessions();
  } catch (err) {
    if (err.name === "ApiError" && err.status === 404) { // already gone
      dropFromList(s.id);
      closeSession();
    } else {
      showError(err);
    }
  } finally {
    button.disabled = false;
  }
}

// -- recordings (analysis jobs, GET /api/jobs): listed here too, each opens on the analysis page ----------------
const JOB_STATUS = { queued: "Queued", running: "Analyzing", done: "Done", failed: "Failed", cancelled: "Cancelled" };
const jobs = { loaded: false, list: [] };

function jobItem(job) {
  const created = new Date((Number(job.created_at) || 0) * 1000);
  const status = job.status || "queued";
  const facts = [job.duration_s != null ? duration(job.duration_s) : null,
    status === "running" ? `${Math.round(Number(job.progress) || 0)} %` : null,
    status === "failed" && job.error ? job.error.message : null].filter(Boolean);
  return el("a", { class: `session job-item status-${status}`, href: `/analyze?job=${encodeURIComponent(job.id)}`,
    dataset: { jobId: job.id, status } },
  el("div", { class: "s-top" },
    el("span", { class: "s-room job-name", title: job.filename || "" }, job.filename || "recording"),
    el("span", { class: "spacer" }),
    el("span", { class: `pill pill-${status}` }, JOB_STATUS[status] || status)),
  el("div", { class: "s-meta" }, [dayTime(created), ...facts].join(" · ")));
}

async function loadRecordings() {
  const empty = $("#jobs-empty");
  try {
    const body = await api("/api/jobs?limit=50");
    jobs.list = (body && body.jobs) || [];
    jobs.loaded = true;
    $("#jobs").replaceChildren(...jobs.list.map(jobItem));
    empty.hidden = jobs.list.length > 0;
    empty.textContent = "No recordings yet. Analyze one to read it as a chat, with a speaker timeline.";
  } catch (err) {
    empty.hidden = false;
    empty.textContent = err.name === "ApiError" && err.status === 404
      ? "This server does not analyze recordings." : describeError(err).text;
  }
}

/** Show the calls (sessions) or the recordings (analysis jobs) in the list; `?list=recordings` keeps it. */
function showList(which) {
  state.list = which === "recordings" ? "recordings" : "calls";
  const recordings = state.list === "recordings";
  $(".area-list").dataset.list = state.list;
  document.querySelectorAll("#list-tabs .tab").forEach((tab) => {
    const on = tab.dataset.list === state.list;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
  });
  const url = new URL(location.href);
  if (recordings) url.searchParams.set("list", "recordings"); else url.searchParams.delete("list");
  history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  if (recordings) {
    $("#list-title").textContent = "Recordings";
    loadRecordings();
  } else {
    showFilter();
    updateList();
  }
}

$("#list-tabs").addEventListener("click", (e) => {
  const tab = e.target.closest(".tab");
  if (tab) showList(tab.dataset.list);
});

// -- wiring ----------------------------------------------------------------------------------
$("#older").addEventListener("click", () => loadSessions());
$("#filter").addEventListener("submit", (e) => {
  e.preventDefault();
  const room = $("#filter-room").value.trim();
  if (room && !/^[\w.-]{1,64}$/.test(room)) {
    showBanner("Check the room name", "A room name uses letters, digits, '.', '-' and '_' (at most 64).");
    return;
  }
  state.room = room;
  showFilter();
  closeSession();
  loadSessions(true);
});
$("#filter-clear").addEventListener("click", () => {
  state.room = "";
  showFilter();
  closeSession();
  loadSessions(true);
});
$("#back").addEventListener("click", closeSession);
$("#delete").addEventListener("click", deleteSession);
$("#listen").addEventListener("click", listen);

showFilter();
if (params.get("list") === "recordings") showList("recordings");
const wanted = /^#session=(.+)$/.exec(location.hash);
loadSessions(true).then(() => { if (wanted) openSession(decodeURIComponent(wanted[1])); });
