// The recording-analysis page (/analyze): the upload form (upload.js) sends a recording with its options; the
// job is followed live (jobstream.js: its event stream, else polling), can be cancelled, then read as the same chat
// as a call (chat.js), a speaker timeline (timeline.js) and per-speaker statistics (speakerstats.js); anonymous
// speakers are named as in calls (the chat's label editor, POST /api/jobs/{id}/speakers/{speaker_id}/name), and the
// analysis is exported (export.js). Past jobs are listed (GET /api/jobs); `?job=ID` opens one, so a job can be
// linked and reloaded.

import { ChatView } from "./chat.js";
import { wireJobExport } from "./export.js";
import { duration, plural, when } from "./format.js";
import { followJob, TERMINAL } from "./jobstream.js";
import { ApiError, api, apiJSON, describeError } from "./net.js";
import { renderSpeakerStats } from "./speakerstats.js";
import { segmentsOf, speakerRows } from "./speakerrows.js";
import { Timeline } from "./timeline.js";
import { $, askDialog, el, hideBanner, showBanner, showError } from "./ui.js";
import { setUploadStatus, wireUpload } from "./upload.js";

/** The pipeline's stages in order; `option`: the stage only runs when that option is on. */
const STAGES = [
  { id: "queued", label: "Queued" },
  { id: "decoding", label: "Decoding" },
  { id: "voice activity", label: "Finding speech" },
  { id: "diarization", label: "Telling speakers apart", option: "diarize" },
  { id: "transcription", label: "Transcribing" },
  { id: "features", label: "Voice features", option: "features" },
  { id: "sentiment", label: "Sentiment", option: "sentiment" },
];
const STATUS_WORDS = { queued: "Queued", running: "Analyzing", done: "Done", failed: "Failed",
  cancelled: "Cancelled" };

const state = {
  jobs: [], // the list (GET /api/jobs), newest first
  job: null, // the job open (its latest JSON; with `result` once done)
  follow: null, // {abort: AbortController, ticket} of the job being followed
  ticket: 0, // bumped whenever another job is opened (late answers for the old one are dropped)
  listTimer: null,
};
window.callscribe = state; // for tests and the curious

const chat = new ChatView($("#chat"), {
  empty: $("#chat-empty"), jump: $("#jump"), onChange: updateCount,
  onName: (request) => { nameSpeaker(request); return true; },
});
state.chat = chat;
const updateExport = wireJobExport($("#export"), () => state.job);

// -- language names ----------------------------------------------------------------------------
const LANGUAGES = { en: "English", ko: "Korean", ja: "Japanese", zh: "Chinese", de: "German", fr: "French",
  es: "Spanish", it: "Italian", pt: "Portuguese", nl: "Dutch", ru: "Russian" };
const languageName = (code) => LANGUAGES[code] || (code ? code.toUpperCase() : "");

// -- the list of past jobs ----------------------------------------------------------------------
function jobItem(job) {
  const status = job.status || "queued";
  const pct = Math.round(Number(job.progress) || 0);
  const facts = [job.duration_s != null ? duration(job.duration_s) : null,
    status === "running" ? `${pct} %${job.stage ? ` · ${job.stage}` : ""}` : null,
    status === "failed" && job.error ? job.error.message : null].filter(Boolean);
  return el("a", { class: `session job-item status-${status}`, href: jobHref(job.id),
    dataset: { jobId: job.id, status }, "aria-current": state.job && state.job.id === job.id ? "true" : null,
    onclick: (e) => {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return; // a new tab: let it
      e.preventDefault();
      openJob(job.id, { push: true });
    } },
  el("div", { class: "s-top" },
    el("span", { class: "s-room job-name", title: job.filename || "" }, job.filename || "recording"),
    el("span", { class: "spacer" }),
    el("span", { class: `pill pill-${status}` }, STATUS_WORDS[status] || status)),
  el("div", { class: "s-meta" },
    el("time", { datetime: job.created_at ? new Date(job.created_at * 1000).toISOString() : null }, when(job.created_at)),
    facts.length ? ` · ${facts.join(" · ")}` : ""));
}

function jobHref(id) {
  const url = new URL(location.href);
  url.searchParams.set("job", id);
  url.hash = "";
  return url.pathname + url.search;
}

function renderJobs() {
  const list = $("#jobs");
  list.replaceChildren(...state.jobs.map(jobItem));
  const total = Math.max(state.total || 0, state.jobs.length);
  $("#jobs-count").textContent = !state.jobs.length ? ""
    : total > state.jobs.length ? `newest ${state.jobs.length} of ${total}` : plural(total, "recording");
  const empty = $("#jobs-empty");
  empty.hidden = state.jobs.length > 0;
  if (!state.loaded) empty.hidden = true;
  else if (!state.jobs.length && !empty.dataset.error) {
    empty.textContent = "No recordings yet. Each one you analyze is listed here, with its transcript.";
  }
  scheduleListRefresh();
}

/** Put `job` (without its result) into the list, replacing the one with its id. */
function upsertJob(job) {
  const { result, ...bare } = job; // eslint-disable-line no-unused-vars
  const i = state.jobs.findIndex((j) => j.id === job.id);
  if (i >= 0) state.jobs[i] = { ...state.jobs[i], ...bare };
  else state.jobs.unshift(bare);
  renderJobs();
}

async function loadJobs() {
  const empty = $("#jobs-empty");
  try {
    const body = await api("/api/jobs?limit=50");
    state.jobs = (body && body.jobs) || [];
    state.total = Number(body && body.total) || state.jobs.length;
    state.loaded = true;
    delete empty.dataset.error;
    renderJobs();
  } catch (err) {
    const { title, text } = describeError(err);
    empty.dataset.error = "1";
    empty.hidden = false;
    empty.textContent = err.name === "ApiError" && err.status === 404
      ? "This server does not analyze recordings (no /api/jobs)." : text;
    if (!(err.name === "ApiError" && err.status === 404)) showBanner(title, text);
  }
}

/** While a listed job other than the one followed is still running, refresh the list now and then. */
function scheduleListRefresh() {
  clearTimeout(state.listTimer);
  const open = state.job && state.job.id;
  const busy = state.jobs.some((j) => !TERMINAL.has(j.status) && j.id !== open);
  if (busy) state.listTimer = setTimeout(loadJobs, 5000);
}

// -- one job -----------------------------------------------------------------------------------
function setView(view) {
  $("#layout").dataset.view = view;
}

function setUrl(id, push) {
  const url = new URL(location.href);
  if (id) url.searchParams.set("job", id); else url.searchParams.delete("job");
  const target = url.pathname + url.search;
  if (target === location.pathname + location.search) return;
  if (push) history.pushState({ job: id || null }, "", target);
  else history.replaceState({ job: id || null }, "", target);
}

function stopFollowing() {
  state.ticket += 1;
  if (state.follow) state.follow.abort.abort();
  state.follow = null;
}

function closeJob({ push = false } = {}) {
  stopFollowing();
  state.job = null;
  chat.clear();
  emptyChat("No recording open",
    "Drop a recording on the left to transcribe it and see who said what, or open one you analyzed before.");
  $("#job").dataset.status = "none";
  ["#job-info", "#job-progress", "#job-error", "#tabs", "#export"].forEach((s) => { $(s).hidden = true; });
  showTab("chat");
  $("#job-title").textContent = "Recording";
  document.title = "Analyze a recording — callscribe";
  setView("list");
  setUrl(null, push);
  renderJobs();
  updateExport();
  updateCount();
}

function emptyChat(title, text) {
  $("#chat-empty-title").textContent = title;
  $("#chat-empty-text").textContent = text;
}

/** Open job `id`: show what is known (`job`, e.g. the upload's answer), fetch it, follow it until it ends. */
async function openJob(id, { job = null, push = false } = {}) {
  stopFollowing();
  const ticket = state.ticket;
  hideBanner();
  setUrl(id, push);
  setView("detail");
  state.job = null;
  chat.clear();
  timeline.clear();
  $("#stats").replaceChildren();
  const known = job || state.jobs.find((j) => j.id === id) || null;
  if (known) showJob(known);
  else {
    emptyChat("Opening…", "Fetching the recording's analysis.");
    $("#job").dataset.status = "loading";
  }
  let full;
  try {
    full = await api(`/api/jobs/${encodeURIComponent(id)}`);
  } catch (err) {
    if (ticket !== state.ticket) return;
    if (err.name === "ApiError" && err.status === 404) {
      showBanner("This recording is gone", "It was deleted, or the link is wrong.", "info");
      state.jobs = state.jobs.filter((j) => j.id !== id);
      closeJob();
    } else {
      showError(err);
      if (!known) emptyChat("Could not open the recording", describeError(err).text);
    }
    return;
  }
  if (ticket !== state.ticket) return;
  showJob(full);
  upsertJob(full);
  if (!TERMINAL.has(full.status)) follow(id, ticket);
}

/** Draw `job` (any status). A done job with its result shows the chat, the timeline and the statistics. */
function showJob(job) {
  const previous = state.job;
  state.job = job;
  const status = job.status || "queued";
  $("#job").dataset.status = status;
  $("#job-title").textContent = status === "done" ? "Transcript" : "Recording";
  document.title = `${job.filename || "Recording"} — callscribe`;
  $("#info-file").textContent = job.filename || "recording";
  $("#info-file").title = job.filename || "";
  const pill = $("#info-status");
  pill.className = `pill pill-${status}`;
  pill.textContent = STATUS_WORDS[status] || status;
  $("#info-when").textContent = when(job.created_at);
  const length = (job.result && job.result.duration_s) ?? job.duration_s;
  $("#info-duration").hidden = length == null;
  $("#info-duration").textContent = length == null ? "" : duration(length);
  const r = job.result;
  $("#info-language").hidden = !(r && r.language);
  $("#info-language").textContent = r && r.language ? languageName(r.language) : "";
  $("#info-processing").hidden = !(r && r.processing_s != null);
  $("#info-processing").textContent = r && r.processing_s != null
    ? `analyzed in ${duration(r.processing_s)}${r.real_time_factor != null ? ` (real-time factor ${Number(r.real_time_factor).toFixed(2)})` : ""}`
    : "";
  $("#job-info").hidden = false;
  $("#job-cancel").hidden = TERMINAL.has(status);
  $("#job-delete").hidden = !TERMINAL.has(status);
  showProgress(job);
  showFailure(job);
  if (TERMINAL.has(status) && state.uploaded === job.id) { // the upload's "under way" note is out of date
    state.uploaded = null;
    setUploadStatus(null);
  }
  const done = status === "done" && r;
  $("#tabs").hidden = !done;
  $("#export").hidden = !done;
  if (done && !(previous && previous.id === job.id && previous.result === r)) showResult(job);
  if (!done) {
    chat.clear();
    showTab("chat");
    if (status === "failed") emptyChat("No transcript", "The analysis failed before it had a transcript.");
    else if (status === "cancelled") emptyChat("No transcript", "The analysis was cancelled.");
    else if (status === "done") emptyChat("Opening…", "Fetching the transcript.");
    else emptyChat("Analyzing…", "The transcript appears here when the analysis is done.");
  }
  markCurrent(job.id);
  updateExport();
  updateCount();
}

function markCurrent(id) {
  document.querySelectorAll("#jobs .job-item").forEach((a) => {
    if (a.dataset.jobId === String(id)) a.setAttribute("aria-current", "true");
    else a.removeAttribute("aria-current");
  });
}

function stagesFor(job) {
  const opts = job.options || {};
  return STAGES.filter((s) => !s.option || opts[s.option] !== false);
}

function showProgress(job) {
  const box = $("#job-progress");
  const active = !TERMINAL.has(job.status);
  box.hidden = !active;
  if (!active) return;
  const stages = stagesFor(job);
  const stage = job.status === "queued" ? "queued" : job.stage || "decoding";
  const at = Math.max(0, stages.findIndex((s) => s.id === stage));
  $("#stages").replaceChildren(...stages.map((s, i) => el("li", {
    class: i < at ? "stage done" : i === at ? "stage now" : "stage",
    "aria-current": i === at ? "step" : null }, el("span", { class: "stage-dot", "aria-hidden": "true" }), s.label)));
  const pct = Math.max(0, Math.min(100, Number(job.progress) || 0));
  $("#job-fill").style.width = `${pct}%`;
  $("#job-bar").setAttribute("aria-valuenow", String(Math.round(pct)));
  $("#job-bar").dataset.state = job.status;
  const message = job.message || (job.status === "queued" ? "Waiting for a free worker…" : "Analyzing…");
  $("#job-message").textContent = message;
  $("#job-pct").textContent = `${Math.round(pct)} %`;
  const link = $("#job-link");
  link.hidden = false;
  link.textContent = "You can close this page: the analysis goes on, and the recording stays in the list.";
}

function showFailure(job) {
  const box = $("#job-error");
  const failed = job.status === "failed";
  box.hidden = !failed && job.status !== "cancelled";
  box.dataset.kind = failed ? "failed" : "cancelled";
  if (failed) {
    const err = job.error || {};
    $("#job-error-title").textContent = "The analysis failed";
    const said = err.message ? `${err.message[0].toUpperCase()}${err.message.slice(1)}${/[.!?]$/.test(err.message) ? "" : "."}`
      : "The server gave no reason.";
    $("#job-error-text").textContent = `${said}${err.code ? ` (${err.code})` : ""}`;
  } else if (job.status === "cancelled") {
    $("#job-error-title").textContent = "Cancelled";
    $("#job-error-text").textContent = `The analysis was cancelled${job.finished_at ? ` (${when(job.finished_at)})` : ""}. `
      + "Upload the recording again to analyze it.";
  }
}


// -- following a job -----------------------------------------------------------------------------------
/** Follow job `id` (opened with `ticket`) until it ends, or until another job is opened. */
function follow(id, ticket) {
  const abort = new AbortController();
  state.follow = { abort, ticket };
  followJob(id, { signal: abort.signal, live: () => ticket === state.ticket, onJob: update,
    onGone: () => gone(id), onDenied: showError });
}

function gone(id) {
  showBanner("This recording is gone", "It was deleted on the server.", "info");
  state.jobs = state.jobs.filter((j) => j.id !== id);
  closeJob();
}

/** A new state of the open job (an event or a poll). A done job without its result is fetched in full. */
async function update(job) {
  const current = state.job;
  if (!current || current.id !== job.id) return;
  const merged = { ...current, ...job };
  if (!("result" in job)) merged.result = current.result ?? null;
  upsertJob(merged);
  if (merged.status === "done" && !merged.result) {
    showJob({ ...merged, status: "running", progress: 100, message: "Fetching the transcript…" });
    const ticket = state.ticket;
    try {
      const full = await api(`/api/jobs/${encodeURIComponent(job.id)}`);
      if (ticket === state.ticket) { showJob(full); upsertJob(full); }
    } catch (err) {
      if (ticket === state.ticket) showError(err);
    }
    return;
  }
  showJob(merged);
}

async function cancelJob() {
  const job = state.job;
  if (!job || TERMINAL.has(job.status)) return;
  const button = $("#job-cancel");
  button.disabled = true;
  try {
    const body = await api(`/api/jobs/${encodeURIComponent(job.id)}`, { method: "DELETE" });
    if (state.job && state.job.id === job.id) {
      stopFollowing();
      const cancelled = body && body.id ? body : { ...job, status: "cancelled" };
      showJob(cancelled);
      upsertJob(cancelled);
    }
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
  }
}

function confirmDelete(job) {
  const dialog = $("#confirm-delete");
  $("#delete-what").textContent = job.filename || "this recording";
  return askDialog(dialog).then((answer) => answer === "delete");
}

async function deleteJob() {
  const job = state.job;
  if (!job || !(await confirmDelete(job))) return;
  const button = $("#job-delete");
  button.disabled = true;
  try {
    await api(`/api/jobs/${encodeURIComponent(job.id)}`, { method: "DELETE" });
    showBanner("Recording deleted", `“${job.filename || "The recording"}” and its analysis are gone from the server.`, "info");
  } catch (err) {
    if (!(err.name === "ApiError" && err.status === 404)) { showError(err); button.disabled = false; return; }
  }
  button.disabled = false;
  state.jobs = state.jobs.filter((j) => j.id !== job.id);
  if (state.job && state.job.id === job.id) closeJob();
  else renderJobs();
}

// -- the result: chat, timeline, statistics --------------------------------------------------------
function showResult(job) {
  const segments = segmentsOf(job.result);
  emptyChat("Nothing was said", "The analysis found no speech in this recording.");
  chat.showStored(segments);
  timeline.render();
  renderStats();
  updateCount();
}

function updateCount() {
  const n = chat.finals().length;
  $("#count").textContent = state.job && state.job.status === "done" && n ? plural(n, "message") : "";
}

function showTab(name) {
  document.querySelectorAll("#tabs .tab").forEach((tab) => {
    const on = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
  });
  $("#panel-chat").hidden = name !== "chat";
  $("#panel-timeline").hidden = name !== "timeline";
  $("#panel-stats").hidden = name !== "stats";
  $("#job").dataset.tab = name;
  if (name === "timeline") timeline.render();
  else timeline.close();
}

/** The open job's result and its speakers (in the chat's colours), for the timeline; null without a result. */
function resultRows() {
  const job = state.job;
  return job && job.result ? { result: job.result, rows: speakerRows(job.result, chat) } : null;
}

/** Show segment `seg`'s bubble in the transcript, briefly highlighted. */
function jumpTo(seg) {
  showTab("chat");
  const node = [...document.querySelectorAll("#chat .msg.final")].find((n) => n.final
    && n.final.utterance_id === seg.utterance_id && (n.final.turn || 0) === (seg.turn || 0));
  if (!node) return;
  node.scrollIntoView({ block: "center" });
  node.classList.remove("flash");
  void node.offsetWidth; // restart the animation
  node.classList.add("flash");
}

const timeline = new Timeline($("#timeline"), { panel: $("#panel-timeline"), data: resultRows, onJump: jumpTo });
state.timeline = timeline;

/** The per-speaker statistics table of the open job. */
function renderStats() {
  const job = state.job;
  const onName = chat.naming ? (row) => { showTab("chat"); chat.openEditor(row.speaker_id); } : null;
  renderSpeakerStats($("#stats"), job, job && job.result ? speakerRows(job.result, chat) : [], { onName });
}

// -- naming a speaker (the chat's editor; REST instead of the data channel) ---------------------------------
async function nameSpeaker(request) {
  const job = state.job;
  if (!job) return;
  const path = `/api/jobs/${encodeURIComponent(job.id)}/speakers/${encodeURIComponent(request.speaker_id)}/name`;
  let ack;
  try {
    ack = await apiJSON(path, "POST", { name: request.name, save: request.save, extend: request.extend });
  } catch (err) {
    if (!state.job || state.job.id !== job.id) return;
    if (err instanceof ApiError && chat.handle({ type: "error", code: err.code, message: err.message })) return;
    chat.closeEditor();
    showError(err);
    return;
  }
  const saved = ack && ack.profile_id != null;
  const to = { speaker: (ack && ack.name) || request.name,
    speaker_id: saved ? `profile:${ack.profile_id}` : request.speaker_id, speaker_kind: saved ? "profile" : "anonymous" };
  chat.handle({ type: "speaker_named", speaker_id: request.speaker_id, name: to.speaker, profile_id: ack && ack.profile_id });
  chat.handle({ type: "speaker_relabeled", from_id: request.speaker_id, ...to, reason: "named" });
  const current = state.job;
  if (current && current.id === job.id && current.result) {
    const relabel = (item) => (item.speaker_id === request.speaker_id ? { ...item, ...to } : item);
    current.result = { ...current.result, segments: (current.result.segments || []).map(relabel),
      speakers: (current.result.speakers || []).map(relabel) };
    timeline.render();
    renderStats();
  }
  showBanner("Speaker named", saved ? `${to.speaker}'s voice is saved: the next call and recording recognise it.`
    : `Every sentence of this speaker now says ${to.speaker}.`, "info");
}


// -- wiring ------------------------------------------------------------------------------------------
wireUpload({
  onUploaded: (job) => {
    state.uploaded = job.id;
    upsertJob(job);
    openJob(job.id, { job, push: true });
  },
  onDroppedElsewhere: () => setView("list"),
});
$("#jobs-refresh").addEventListener("click", loadJobs);
$("#back").addEventListener("click", () => closeJob({ push: true }));
$("#job-cancel").addEventListener("click", cancelJob);
$("#job-delete").addEventListener("click", deleteJob);
$("#job-retry").addEventListener("click", () => {
  closeJob({ push: true });
  $("#drop").scrollIntoView({ block: "center" });
  $("#file").focus();
});
$("#tabs").addEventListener("click", (e) => {
  const tab = e.target.closest(".tab");
  if (tab) showTab(tab.dataset.tab);
});
$("#tabs").addEventListener("keydown", (e) => {
  if (e.key !== "ArrowRight" && e.key !== "ArrowLeft") return;
  const tabs = [...document.querySelectorAll("#tabs .tab")];
  const i = tabs.findIndex((t) => t.getAttribute("aria-selected") === "true");
  const next = tabs[(i + (e.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
  showTab(next.dataset.tab);
  next.focus();
});
window.addEventListener("popstate", () => {
  const id = new URLSearchParams(location.search).get("job");
  if (id) openJob(id);
  else closeJob();
});

{
  const wanted = new URLSearchParams(location.search).get("job");
  if (wanted) openJob(wanted);
  else closeJob();
  loadJobs();
}
