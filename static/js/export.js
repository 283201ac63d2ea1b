// Conversation export. The formats (text, JSON, SRT, WebVTT) have one implementation, on the server
// (server/export/formats.py): the page sends the finals it shows to POST /api/export and downloads the answer.

import { ApiError, describeError, SERVER, ServerUnreachable } from "./net.js";
import { showBanner } from "./ui.js";

/** The page's export buttons (data-export) → the server's format names. */
const SERVER_FORMATS = { txt: "text", srt: "srt", vtt: "vtt", json: "json" };

/** POST the finals to /api/export → {text, mime}. Throws ServerUnreachable, or ApiError with the server's message. */
async function requestExport(format, finals, meta = {}) {
  const name = SERVER_FORMATS[format];
  if (!name) {
    throw new Error(`Unknown export format “${format}”; use one of ${Object.keys(SERVER_FORMATS).join(", ")}.`);
  }
  let resp;
  try {
    resp = await fetch(`${SERVER}/api/export?format=${name}`, {
      method: "POST", cache: "no-store", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ finals, meta }),
    });
  } catch (err) {
    throw new ServerUnreachable(err);
  }
  const text = await resp.text();
  if (!resp.ok) {
    let error = {};
    try { error = JSON.parse(text).error || {}; } catch { /* not our JSON error, e.g. a proxy's page */ }
    throw new ApiError(resp.status, error.code || "http_error",
      error.message || `the export failed with HTTP ${resp.status} ${resp.statusText}`.trim());
  }
  return { text, mime: (resp.headers.get("Content-Type") || "text/plain").split(";")[0].trim() };
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

/**
 * Wire the buttons with data-export="txt|srt|vtt|json" inside `root` to export `chat`'s finals; `meta()` gives
 * the export's metadata ({room, …}). Returns update(), which disables the buttons while there is nothing to
 * export. A failed export shows the page's banner; the chat is left as it is.
 */
export function wireExport(root, chat, meta) {
  const buttons = [...root.querySelectorAll("[data-export]")];
  const busy = new Set();
  const update = () => {
    const none = chat.finals().length === 0;
    buttons.forEach((b) => { b.disabled = none || busy.has(b); });
  };
  for (const button of buttons) {
    button.addEventListener("click", async () => {
      const format = button.dataset.export;
      const info = meta();
      const now = new Date();
      const stamp = now.toISOString().slice(0, 16).replace(/[-:]/g, "").replace("T", "-");
      busy.add(button);
      button.setAttribute("aria-busy", "true");
      update();
      try {
        const { text, mime } = await requestExport(format, chat.finals(), { ...info, exported_at: now.toISOString() });
        download(`callscribe-${info.room || "call"}-${stamp}.${format}`, text, mime);
      } catch (err) {
        const { text } = describeError(err);
        const stop = /[.!?]$/.test(text) ? "" : ".";
        showBanner("Could not export the conversation", `${text}${stop} The chat is still here; try again.`);
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
