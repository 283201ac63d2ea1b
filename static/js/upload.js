// The upload form of the recording-analysis page: a recording picked or dropped (anywhere on the page) with its
// options (language, number of speakers, the optional stages), sent as POST /api/jobs (multipart, with upload
// progress, which can be stopped); a refused upload is said in plain words. The page is told of the job created.

import { describeError, responseError, serverUrl, authHeaders, ServerUnreachable } from "./net.js";
import { bytes } from "./format.js";
import { $, hideBanner } from "./ui.js";

const state = {
  file: null, // the File picked or dropped
  upload: null, // the XMLHttpRequest of the upload in progress
};
let hooks = { onUploaded: () => {}, onDroppedElsewhere: () => {} };

function pick(file) {
  if (!file) return;
  state.file = file;
  const drop = $("#drop");
  drop.dataset.state = "file";
  $("#drop-text").hidden = true;
  $("#drop-file").hidden = false;
  $("#drop-name").textContent = file.name || "recording";
  $("#drop-size").textContent = `${bytes(file.size)}${file.type ? ` · ${file.type}` : ""} — click to pick another`;
  const looksMedia = !file.type || /^(audio|video)\//.test(file.type) || file.type === "application/ogg";
  setUploadStatus(looksMedia ? null : "warn", looksMedia ? "" : `“${file.name}” does not look like audio or video `
    + `(${file.type}); the server will say whether it can read it.`);
  $("#analyze").disabled = Boolean(state.upload);
}

/** Back to an empty drop zone (after an upload went through). */
function resetFile() {
  state.file = null;
  $("#file").value = "";
  $("#drop").dataset.state = "empty";
  $("#drop-text").hidden = false;
  $("#drop-file").hidden = true;
  $("#analyze").disabled = true;
}

function options() {
  const form = new FormData();
  form.append("file", state.file, state.file.name || "recording");
  const language = $("#language").value;
  form.append("language", language);
  const diarize = $("#opt-diarize").checked;
  form.append("diarize", String(diarize));
  const speakers = $("#speakers").value;
  if (speakers) {
    const [lo, hi] = speakers.split("-");
    if (hi) {
      form.append("min_speakers", lo);
      form.append("max_speakers", hi);
    } else {
      form.append("num_speakers", lo);
    }
  }
  form.append("features", String($("#opt-features").checked));
  form.append("sentiment", String($("#opt-sentiment").checked));
  return form;
}

/** The line under the form: kind null (hidden) | "done" | "warn" | "failed". */
export function setUploadStatus(kind, text) {
  const status = $("#upload-status");
  status.hidden = !kind;
  status.dataset.state = kind || "idle";
  status.textContent = text || "";
}

function showUploadProgress(loaded, total) {
  const pct = total ? Math.min(100, Math.round((100 * loaded) / total)) : 0;
  $("#upload-progress").hidden = false;
  $("#upload-fill").style.width = `${pct}%`;
  $("#upload-bar").setAttribute("aria-valuenow", String(pct));
  $("#upload-text").textContent = total && loaded >= total ? "Uploaded — starting the analysis…"
    : `Uploading ${bytes(loaded)}${total ? ` of ${bytes(total)}` : ""}`;
  $("#upload-pct").textContent = total ? `${pct} %` : "";
}

/** {title, text} for a refused upload, in plain words (the server's message kept). */
function uploadError(err, retryAfter) {
  if (err.name !== "ApiError") return describeError(err);
  const said = err.message ? `${err.message[0].toUpperCase()}${err.message.slice(1)}${/[.!?]$/.test(err.message) ? "" : "."}` : "";
  switch (err.code) {
    case "too_large":
      return { title: "The file is too large", text: `${said} Cut the recording into shorter parts, or compress it (e.g. to Opus or MP3), and try again.` };
    case "too_long":
      return { title: "The recording is too long", text: `${said} Cut it into shorter parts and analyze them one by one.` };
    case "bad_audio":
    case "unsupported_media":
      return { title: "The server cannot read this file", text: `${said} Try a common audio or video format (WAV, FLAC, MP3, Ogg, M4A, MP4, WebM).` };
    case "queue_full":
      return { title: "The server is busy", text: `${said || "Too many recordings are waiting."} Please try again${retryAfter ? ` in ${retryAfter} s` : " in a moment"}.` };
    case "bad_request":
      return { title: "The server refused the options", text: `${said} (bad_request)` };
    default:
      return describeError(err);
  }
}

/** POST /api/jobs with the file and the options (XMLHttpRequest: upload progress), then follow the new job. */
function upload(e) {
  e.preventDefault();
  if (!state.file || state.upload) return;
  hideBanner();
  setUploadStatus(null);
  const xhr = new XMLHttpRequest();
  state.upload = xhr;
  xhr.open("POST", serverUrl("/api/jobs"));
  for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
  xhr.setRequestHeader("Accept", "application/json");
  xhr.upload.addEventListener("progress", (ev) => showUploadProgress(ev.loaded, ev.lengthComputable ? ev.total : 0));
  const lock = (locked) => {
    ["#file", "#language", "#opt-diarize", "#opt-features", "#opt-sentiment"].forEach((sel) => { $(sel).disabled = locked; });
    $("#speakers").disabled = locked || !$("#opt-diarize").checked;
    $("#drop").classList.toggle("busy", locked);
  };
  const done = () => {
    lock(false);
    state.upload = null;
    $("#analyze").disabled = !state.file;
    $("#upload-cancel").hidden = true;
    $("#upload-progress").hidden = true;
  };
  xhr.addEventListener("load", () => {
    done();
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch { body = null; }
    if (xhr.status === 202 || xhr.status === 201 || xhr.status === 200) {
      if (!body || !body.id) {
        setUploadStatus("failed", "The server accepted the file but sent no job back.");
        return;
      }
      setUploadStatus("done", `Uploaded “${body.filename || state.file.name}”. The analysis is under way.`);
      resetFile();
      hooks.onUploaded(body);
      return;
    }
    if (xhr.status === 502 || xhr.status === 504 || (!body && xhr.status >= 500)) {
      fail(new ServerUnreachable(new Error(`HTTP ${xhr.status}`)));
      return;
    }
    fail(responseError({ status: xhr.status, statusText: xhr.statusText }, xhr.responseText, "/api/jobs"),
      Number(xhr.getResponseHeader("Retry-After")) || 0);
  });
  xhr.addEventListener("error", () => { done(); fail(new ServerUnreachable(new Error("network error"))); });
  xhr.addEventListener("abort", () => { done(); setUploadStatus("warn", "Upload stopped. Nothing was sent for analysis."); });
  function fail(err, retryAfter = 0) {
    const { title, text } = uploadError(err, retryAfter);
    setUploadStatus(err.code === "queue_full" ? "warn" : "failed", `${title}: ${text}`);
  }
  lock(true);
  $("#analyze").disabled = true;
  $("#upload-cancel").hidden = false;
  showUploadProgress(0, state.file.size);
  xhr.send(options());
}


/**
 * Wire the form and the drop zone. `onUploaded(job)`: the server took the file (its answer, the new job);
 * `onDroppedElsewhere()`: a file was dropped outside the drop zone and picked (the page shows the form).
 */
export function wireUpload({ onUploaded, onDroppedElsewhere }) {
  hooks = { onUploaded, onDroppedElsewhere };
  const drop = $("#drop");
  ["dragenter", "dragover"].forEach((type) => drop.addEventListener(type, (e) => {
    e.preventDefault();
    drop.classList.add("over");
  }));
  ["dragleave", "dragend"].forEach((type) => drop.addEventListener(type, (e) => {
    if (!drop.contains(e.relatedTarget)) drop.classList.remove("over");
  }));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (state.upload) return; // one upload at a time
    const file = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
    if (file) pick(file);
  });
  // a file dropped elsewhere on the page is taken too, rather than the browser opening it
  window.addEventListener("dragover", (e) => { if (e.dataTransfer && [...e.dataTransfer.types].includes("Files")) e.preventDefault(); });
  window.addEventListener("drop", (e) => {
    if (!e.dataTransfer || !e.dataTransfer.files.length || drop.contains(e.target)) return;
    e.preventDefault();
    if (state.upload) return;
    pick(e.dataTransfer.files[0]);
    hooks.onDroppedElsewhere();
  });
  $("#file").addEventListener("change", (e) => pick(e.target.files[0]));
  $("#opt-diarize").addEventListener("change", (e) => {
    $("#speakers").disabled = !e.target.checked;
  });
  $("#upload-form").addEventListener("submit", upload);
  $("#upload-cancel").addEventListener("click", () => { if (state.upload) state.upload.abort(); });
  $("#upload-cancel").addEventListener("click", () => { if (state.upload) state.upload.abort(); });
}
