// The speakers of an analysis result (GET /api/jobs/{id} → `result`), one row each with its segments, in the
// chat's order and colours: what the speaker timeline (timeline.js) and the statistics table (speakerstats.js)
// both draw.

import { speakerKey } from "./chat.js";

const COLOURS = 8;

/** The result's segments that have words, in order. */
export function segmentsOf(result) {
  return ((result && result.segments) || []).filter((s) => (s.text || "").trim());
}

/** The speakers of `result` in `chat`'s order (its colour slots), each with its segments (and their `index`). */
export function speakerRows(result, chat) {
  const rows = new Map();
  const slotOf = (key) => (chat.speakers.get(key) || {}).slot;
  for (const s of (result.speakers || [])) {
    const key = speakerKey(s);
    if (!rows.has(key)) rows.set(key, { key, speaker: s.speaker, speaker_id: s.speaker_id, kind: s.speaker_kind, stats: s, segments: [] });
  }
  segmentsOf(result).forEach((seg, index) => {
    const key = speakerKey(seg);
    if (!rows.has(key)) {
      rows.set(key, { key, speaker: seg.speaker || "unknown", speaker_id: seg.speaker_id, kind: seg.speaker_kind, stats: null, segments: [] });
    }
    rows.get(key).segments.push({ ...seg, index });
  });
  return [...rows.values()].map((r) => ({ ...r, slot: slotOf(r.key), unknown: r.key === "unknown" }))
    .sort((a, b) => (a.slot ?? 1e9) - (b.slot ?? 1e9));
}

/** The CSS class that gives a row its speaker's colour (as in the chat). */
export const colourClass = (row) => (row.unknown ? "unknown" : row.slot != null ? `spk-${row.slot % COLOURS}` : "spk-none");

/** Seconds of speech of a row's segments. */
export const segmentsTalk = (row) => row.segments.reduce((a, s) => a + Math.max(0, s.end - s.start), 0);
