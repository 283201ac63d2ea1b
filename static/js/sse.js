// Reading a server-sent event stream (https://html.spec.whatwg.org/multipage/server-sent-events.html) from a
// fetch() Response, so that the page's `Authorization` header goes along (EventSource cannot send one). Used by the
// job progress stream and by the room view's read-only mode.

/**
 * Read `resp.body` as an event stream until it ends or `onEvent` returns true.
 * @param {Response} resp an OK response whose body is `text/event-stream`
 * @param {(type: string, data: string) => boolean | void} onEvent each event that carries data: its `event:` type
 *   ("message" when absent) and its `data:` lines joined with "\n"; returning true stops reading
 * @returns {Promise<"stopped" | "ended">} "stopped" when `onEvent` asked to, "ended" when the server closed it
 */
export async function readEventStream(resp, onEvent) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let stopped = false;
  const dispatch = (block) => {
    let type = "message";
    const data = [];
    for (const line of block.split(/\r\n|\r|\n/)) {
      if (!line || line.startsWith(":")) continue; // comments keep proxies from closing an idle stream
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") type = value;
      else if (field === "data") data.push(value);
    }
    if (data.length && onEvent(type, data.join("\n")) === true) stopped = true;
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/);
      buffer = blocks.pop();
      for (const block of blocks) {
        dispatch(block);
        if (stopped) {
          reader.cancel().catch(() => {});
          return "stopped";
        }
      }
    }
  } finally {
    reader.releaseLock?.();
  }
  if (buffer.trim()) dispatch(buffer);
  return stopped ? "stopped" : "ended";
}
