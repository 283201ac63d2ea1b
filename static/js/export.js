// Conversation export in the same formats as server/transcript.py: text, JSON, SRT, WebVTT.
// Finals with empty text are left out of every format.

const spoken = (finals) => finals.filter((f) => (f.text || "").trim());

function clock(t, sep) {
  let ms = Math.round(Math.max(0, t) * 1000);
  const h = Math.floor(ms / 3600000); ms -= h * 3600000;
  const m = Math.floor(ms / 60000); ms -= m * 60000;
  const s = Math.floor(ms / 1000); ms -= s * 1000;
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${p(h)}:${p(m)}:${p(s)}${sep}${p(ms, 3)}`;
}

function mmssTenths(t) {
  const v = Math.max(0, t);
  const m = Math.floor(v / 60);
  return `${String(m).padStart(2, "0")}:${(v - m * 60).toFixed(1).padStart(4, "0")}`;
}

/** `[00:03.2–00:05.9] Alice: text` per line. */
export function toText(finals) {
  return spoken(finals).map((f) => `[${mmssTenths(f.start)}–${mmssTenths(f.end)}] ${f.speaker}: ${f.text}`)
    .join("\n") + "\n";
}

export function toSrt(finals) {
  return spoken(finals).map((f, i) =>
    `${i + 1}\n${clock(f.start, ",")} --> ${clock(f.end, ",")}\n${f.speaker}: ${f.text}\n`).join("\n");
}

const vttEscape = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export function toVtt(finals) {
  const cues = spoken(finals).map((f) =>
    `${clock(f.start, ".")} --> ${clock(f.end, ".")}\n<v ${vttEscape(f.speaker)}>${vttEscape(f.text)}\n`);
  return "WEBVTT\n\n" + cues.join("\n");
}

export function toJson(finals, meta = {}) {
  const utterances = spoken(finals).map(({ type, server_time, backlog, ...rest }) => rest);
  const speakers = new Map();
  for (const u of utterances) speakers.set(u.speaker, (speakers.get(u.speaker) || 0) + u.end - u.start);
  const body = { ...meta, utterances,
    speakers: [...speakers].map(([speaker, s]) => ({ speaker, speech_s: Math.round(s * 100) / 100 })) };
  return JSON.stringify(body, null, 2) + "\n";
}

export const FORMATS = {
  txt: { label: "Text", mime: "text/plain", render: toText },
  srt: { label: "SRT", mime: "application/x-subrip", render: toSrt },
  vtt: { label: "WebVTT", mime: "text/vtt", render: toVtt },
  json: { label: "JSON", mime: "application/json", render: toJson },
};

/** Download `text` as a file through a Blob URL and a temporary <a download>. */
export function download(filename, text, mime) {
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

/** Wire the buttons with data-export="txt|srt|vtt|json" inside `root` to export `chat`'s finals. */
export function wireExport(root, chat, meta) {
  const buttons = [...root.querySelectorAll("[data-export]")];
  for (const button of buttons) {
    button.addEventListener("click", () => {
      const fmt = FORMATS[button.dataset.export];
      const info = meta();
      const stamp = new Date().toISOString().slice(0, 16).replace(/[-:]/g, "").replace("T", "-");
      const base = `callscribe-${info.room || "call"}-${stamp}`;
      download(`${base}.${button.dataset.export}`, fmt.render(chat.finals(), { ...info, exported_at:
        new Date().toISOString() }), fmt.mime);
    });
  }
  const update = () => {
    const none = chat.finals().length === 0;
    buttons.forEach((b) => { b.disabled = none; });
  };
  update();
  return update;
}
