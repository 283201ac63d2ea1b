// Conversation export. The formats (text, JSON, SRT, WebVTT, RTTM) have one implementation, on the server
// (server/export/formats.py): a live page sends the finals it shows to POST /api/export, the history page asks
// for a stored session's file (GET /api/sessions/{id}/transcript); either way the answer is downloaded as is.

import { describeError, responseError, serverFetch } from "./net.js";
import { showBanner } from "./ui.js";

/** The pages' export buttons (data-export) → the format names of POST /api/export. */
const SERVER_FORMATS = { txt: "text", srt: "srt", vtt: "vtt", json: "json", rttm: "rttm" };

/** The answer of an export request → {text, mime, filename}; a refusal throws ApiError with the server's message. */
async function fileFrom(resp, path) {
  const text = await resp.text();
  if (!resp.ok) throw responseError(resp, text, path);
  const disposition = resp.headers.get("Content-Disposition") || "";
  const m = /filename\*=UTF-8''([^;]+)/i.exec(disposition) || /filename="?([^";]+)"?/i.exec(disposition);
  let filename = null;
  try { filename = m ? decodeURIComponent(m[1].trim()) : null; } catch { filename = m[1].trim(); }
  return { text, mime: (resp.headers.get("Content-Type") || "text/plain").split(";")[0].trim(), filename };
}

/** POST the finals to /api/export → {text, mime, filename}. Throws ServerUnreachable, or ApiError. */
async function requestExport(format, finals, meta = {}) {
  const name = SERVER_FORMATS[format];
  if (!name) {
    throw new Error(`Unknown export format “${format}”; use one of ${Object.keys(SERVER_FORMATS).join(", ")}.`);
  }
  const path = `/api/export?format=${name}`;
  const resp = await serverFetch(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ finals, meta }),
  });
  return fileFrom(resp, path);
}

/** A stored session's transcript in `format` (txt|srt|vtt|json|rttm) → {text, mime, filename}. */
async function requestSessionExport(sessionId, format) {
  const path = `/api/sessions/${encodeURIComponent(sessionId)}/transcript?format=${encodeURIComponent(format)}`;
  return fileFrom(await serverFetch(path), path);
}

/** The conversation `finals` (final events as received) rendered by the server in `format` (txt|srt|vtt|json). */
export async function render(format, finals, meta = {}) {
  return (await requestExport(format, finals, meta)).text;
}

/** Download `text` as a file through a Blob URL and a temporary <a download>. */
export function download(filename, text, mime = "text/plain") {
  const url = URL.createObjectURL(new Blob([text], { type: `${mime};charset=utf-8` }));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.style.display = "none";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

const stampOf = (date) => date.toISOString().slice(0, 16).replace(/[-:]/g, "").replace("T", "-");

/** The button text of each export format. */
const FORMAT_LABELS = { txt: "Text", srt: "SRT", vtt: "WebVTT", json: "JSON", rttm: "RTTM" };

/** Fill an empty export bar `<div data-formats="txt srt …">` with its label and one button per format. */
function buildButtons(root) {
  if (!root.dataset.formats || root.querySelector("[data-export]")) return;
  const label = document.createElement("span");
  label.className = "label";
  label.textContent = "Export";
  root.append(label);
  for (const format of root.dataset.formats.split(/\s+/).filter(Boolean)) {
    const button = document.createElement("button");
    button.className = "btn btn-ghost btn-sm";
    button.type = "button";
    button.dataset.export = format;
    button.textContent = FORMAT_LABELS[format] || format.toUpperCase();
    root.append(button);
  }
}

/**
 * The buttons with data-export="…" inside `root` (made from its data-formats when it has none): a click calls `fetchFile(format, now)` → {text, mime, filename?}
 * and downloads it (as `fallbackName(format, now)` when the server names no file). `enabled()` says whether
 * there is anything to export. Returns update(). A failure shows the page's banner and leaves the page as it is.
 */
function wireButtons(root, { enabled, fetchFile, fallbackName, keep }) {
  buildButtons(root);
  const buttons = [...root.querySelectorAll("[data-export]")];
  const busy = new Set();
  const update = () => {
    const none = !enabled();
    buttons.forEach((b) => { b.disabled = none || busy.has(b); });
  };
  for (const button of buttons) {
    button.addEventListener("click", async () => {
      const format = button.dataset.export;
      const now = new Date();
      busy.add(button);
      button.setAttribute("aria-busy", "true");
      update();
      try {
        const { text, mime, filename } = await fetchFile(format, now);
        download(filename || fallbackName(format, now), text, mime);
      } catch (err) {
        const { text } = describeError(err);
        const stop = /[.!?]$/.test(text) ? "" : ".";
        showBanner("Could not export the conversation", `${text}${stop} ${keep}`);
        console.warn("callscribe: export failed", err);
      } finally {
        busy.delete(button);
        button.removeAttribute("aria-busy");
        update();
      }
    });
  }
  update();
  return update;
}

/**
 * Wire the buttons with data-export="txt|srt|vtt|json" inside `root` to export `chat`'s finals; `meta()` gives
 * the export's metadata ({room, …}). Returns update(), which disables the buttons while there is nothing to
 * export. A failed export shows the page's banner; the chat is left as it is.
 */
export function wireExport(root, chat, meta) {
  return wireButtons(root, {
    enabled: () => chat.finals().length > 0,
    // the live export names its file with the time of the export (a conversation may be exported several times)
    fetchFile: async (format, now) => ({
      ...await requestExport(format, chat.finals(), { ...meta(), exported_at: now.toISOString() }), filename: null }),
    fallbackName: (format, now) => `callscribe-${meta().room || "call"}-${stampOf(now)}.${format}`,
    keep: "The chat is still here; try again.",
  });
}

/**
 * Wire the buttons with data-export="txt|srt|vtt|json|rttm" inside `root` to download the stored session that
 * `session()` returns ({id, room, started_at, …} or null) through the server's transcript route.
 */
export function wireSessionExport(root, session) {
  return wireButtons(root, {
    enabled: () => Boolean(session()),
    fetchFile: (format) => requestSessionExport(session().id, format),
    fallbackName: (format) => {
      const s = session();
      return `callscribe-${s.room || "call"}-${stampOf(new Date((s.started_at || 0) * 1000))}.${format}`;
    },
    keep: "The session is still here; try again.",
  });
}

/**
 * Wire the buttons with data-export="txt|srt|vtt|json|rttm" inside `root` to download the analysis of the
 * finished recording job that `job()` returns ({id, status, filename, …} or null) through
 * GET /api/jobs/{id}/export.
 */
export function wireJobExport(root, job) {
  return wireButtons(root, {
    enabled: () => { const j = job(); return Boolean(j && j.status === "done"); },
    fetchFile: async (format) => {
      const path = `/api/jobs/${encodeURIComponent(job().id)}/export?format=${SERVER_FORMATS[format] || format}`;
      return fileFrom(await serverFetch(path), path);
    },
    fallbackName: (format) => `${(job().filename || "recording").replace(/\.[^.]+$/, "") || "recording"}.${format}`,
    keep: "The analysis is still here; try again.",
  });
}
