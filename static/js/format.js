// Words for times, lengths and counts, shared by the pages: day and clock names ("Today, 10:42"), durations
// ("3 min 12 s"), positions in a recording ("1:05", "01:20.4"), file sizes, plurals and percentages.

const clock = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dayWithWeekday = new Intl.DateTimeFormat(undefined,
  { weekday: "short", day: "numeric", month: "short", year: "numeric" });
const dayPlain = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });

/** "10:42" (the local clock time of `date`). */
export const clockTime = (date) => clock.format(date);

/** A key that is the same for two dates on the same local day. */
export function dayKey(date) {
  return `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;
}

/** "Today", "Yesterday", else "Tue, 2 Dec 2025" (`weekday: false`: "2 Dec 2025"). */
export function dayName(date, { weekday = true } = {}) {
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(date) === dayKey(today)) return "Today";
  if (dayKey(date) === dayKey(yesterday)) return "Yesterday";
  return (weekday ? dayWithWeekday : dayPlain).format(date);
}

/** "Today, 10:42", "Yesterday, 09:03", "Tue, 2 Dec 2025, 17:30" (`weekday: false`: "2 Dec 2025, 17:30"). */
export function dayTime(date, { weekday = true } = {}) {
  return `${dayName(date, { weekday })}, ${clockTime(date)}`;
}

/** dayTime, without the weekday, of a time in seconds since the epoch (as the server sends them); "" for none. */
export function when(seconds) {
  if (seconds == null) return "";
  return dayTime(new Date(Number(seconds) * 1000), { weekday: false });
}

/** "42 s", "3 min 12 s", "1 h 04 min". */
export function duration(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ""}`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

const two = (n) => String(n).padStart(2, "0");

/** "1:05" / "1:02:05" (clock time in a recording). */
export function hms(t) {
  const s = Math.max(0, Math.floor(Number(t) || 0));
  if (s < 3600) return `${Math.floor(s / 60)}:${two(s % 60)}`;
  return `${Math.floor(s / 3600)}:${two(Math.floor((s % 3600) / 60))}:${two(s % 60)}`;
}

/** "01:20.4" (a segment's time, to the tenth). */
export function stamp(t) {
  const x = Math.max(0, Number(t) || 0);
  const s = Math.floor(x);
  return `${two(Math.floor(s / 60))}:${two(s % 60)}.${Math.floor((x * 10) % 10)}`;
}

/** "512 B", "40 KB", "3.2 MB", "1.1 GB". */
export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(n < 10 * 1024 * 1024 ? 1 : 0)} MB`;
  return `${(n / 1024 ** 3).toFixed(1)} GB`;
}

/** "1 message", "3 messages". */
export const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** `part` of `whole` in whole percent (0 when there is no whole). */
export const percent = (part, whole) => (whole > 0 ? Math.round((100 * part) / whole) : 0);
