// Following an analysis job until it ends: its event stream (GET /api/jobs/{id}/events, a text/event-stream read
// with fetch so that the Authorization header goes along), reconnected with back-off when it drops, and polling
// (GET /api/jobs/{id}) where streaming does not work at all.

import { api, responseError, serverFetch } from "./net.js";
import { readEventStream } from "./sse.js";

/** The statuses after which a job does not change any more. */
export const TERMINAL = new Set(["done", "failed", "cancelled"]);

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/**
 * Follow job `id` until a terminal event (or until `live()` turns false, or `signal` aborts).
 * @param {string} id the job
 * @param {object} how
 * @param {AbortSignal} how.signal aborts the stream in progress
 * @param {() => boolean} how.live whether the job is still wanted (checked after every wait)
 * @param {(job: object) => void} how.onJob each new state of the job (an event or a poll)
 * @param {() => void} how.onGone the job is not there (404)
 * @param {(err: Error) => void} how.onDenied the server refuses to show it (401, 403)
 */
export async function followJob(id, { signal, live, onJob, onGone, onDenied }) {
  let delay = 1000;
  let failures = 0;
  while (live()) {
    let gotEvents = false;
    try {
      const outcome = await stream(id, signal, (job) => {
        gotEvents = true;
        if (live()) onJob(job);
      });
      if (outcome === "terminal") return;
      if (outcome === "unsupported") break; // no event stream here: poll
    } catch (err) {
      if (!live() || signal.aborted) return;
      if (err.name === "ApiError") {
        if (err.status === 404) { onGone(); return; }
        if (err.status === 401 || err.status === 403) { onDenied(err); return; }
      }
      console.warn("callscribe: job event stream failed", err);
    }
    if (!live()) return;
    failures = gotEvents ? 0 : failures + 1;
    if (failures >= 3) break; // the stream never gets through: poll instead
    if (gotEvents) delay = 1000;
    await sleep(delay);
    delay = Math.min(15000, delay * 2);
  }
  if (live()) poll(id, { live, onJob, onGone, onDenied });
}

/** One connection to the job's event stream. Calls `onJob` for each event; resolves "terminal" after the
 * terminal event, "ended" when the stream ends before one, "unsupported" when the answer is no event stream. */
async function stream(id, signal, onJob) {
  const path = `/api/jobs/${encodeURIComponent(id)}/events`;
  const resp = await serverFetch(path, { headers: { Accept: "text/event-stream" }, signal });
  if (!resp.ok) throw responseError(resp, await resp.text(), path);
  const type = resp.headers.get("Content-Type") || "";
  if (!/text\/event-stream/i.test(type) || !resp.body || !resp.body.getReader) return "unsupported";
  let terminal = false;
  await readEventStream(resp, (event, data) => {
    let job;
    try { job = JSON.parse(data); } catch { return false; }
    if (TERMINAL.has(event)) {
      terminal = true;
      onJob({ ...job, status: job.status || event });
    } else if (event === "progress" || event === "message") {
      onJob(job);
    }
    return terminal;
  });
  return terminal ? "terminal" : "ended";
}

/** Poll GET /api/jobs/{id} until the job ends (when the event stream cannot be used). */
async function poll(id, { live, onJob, onGone, onDenied }) {
  let delay = 1500;
  while (live()) {
    await sleep(delay);
    if (!live()) return;
    try {
      const job = await api(`/api/jobs/${encodeURIComponent(id)}`);
      if (!live()) return;
      onJob(job);
      if (TERMINAL.has(job.status)) return;
      delay = 1500;
    } catch (err) {
      if (!live()) return;
      if (err.name === "ApiError" && err.status === 404) { onGone(); return; }
      if (err.name === "ApiError" && (err.status === 401 || err.status === 403)) { onDenied(err); return; }
      delay = Math.min(15000, delay * 2);
    }
  }
}
