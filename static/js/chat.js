// The messenger-style transcript, shared by the call page and the room view.
//
// One bubble per final (key: peer_id + utterance_id + turn). speech_started / partial open a pending bubble
// for the utterance that updates in place; the utterance's first final replaces it, later turns follow it,
// and a final with empty text (noise) removes it. The first distinct speaker sits on the left, the second
// on the right (like a two-person messenger), later ones alternate sides and get their own colours;
// "unknown" is drawn grey, italic, with a dashed border. A speaker is its stable identity (`speaker_id`, e.g.
// "profile:3" or "anon:1"), not its label: a renamed profile keeps its side and colour. Every final without an
// id (`speaker_kind` "unknown") shares the one unknown slot. The label shown is `speaker`.
//
// Protocol 3: `speaker_relabeled` moves every bubble of `from_id` to the new identity (a merge takes the slot
// of the speaker it joins). With `onName` given, an anonymous speaker's label opens an inline editor that
// sends `name_speaker`; `speaker_named` and the naming errors come back through `handle` too.
//
// The history page shows a stored session with `showStored(utterances)`: the same bubbles, read-only.
//
// Sentiment: a `sentiment` event (after its final: same peer_id, utterance_id and turn) puts a small coloured
// dot with its label on the bubble (the score in the tooltip); finals that already carry `sentiment` (a backlog,
// a stored session) get it at once. A stats line above the chat (created here, before the `.chat-wrap`) keeps
// the running counts for the session and per speaker: "positive: 12 (60 %) / negative: 3 (15 %)".

import { $, el, showBanner } from "./ui.js";

const UNKNOWN = "unknown";
const SENTIMENTS = ["positive", "neutral", "negative"];
const COLOURS = 8;
/** Error codes that answer a `name_speaker` (older servers answer it with the generic ones). */
const NAMING_ERRORS = new Set(["not_found", "name_taken", "invalid_name", "not_in_room", "not_anonymous",
  "unknown_type", "invalid_message", "listen_only", "forbidden", "profile_error"]);

/** The stable key of a final's speaker: its `speaker_id`, or one shared key for every unknown voice. */
export function speakerKey(msg) {
  const unknown = msg.speaker_kind === UNKNOWN || msg.speaker_id == null || msg.speaker_id === "";
  return unknown ? UNKNOWN : `id:${msg.speaker_id}`;
}

/** "mm:ss" from seconds on the call's stream clock. */
export function mmss(t) {
  const s = Math.max(0, Math.floor(t || 0));
  return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

export class ChatView {
  /**
   * @param {HTMLElement} scroller the scrolling container the bubbles go into
   * @param {object} opts {empty: HTMLElement shown while there is nothing, jump: "new messages" button,
   *   onChange: called after every change, onName: (name_speaker message) → true when sent (enables naming),
   *   onNamed: called with a `speaker_named` acknowledgement (e.g. to reload the voice profiles)}
   */
  constructor(scroller, { empty = null, jump = null, onChange = null, onName = null, onNamed = null } = {}) {
    this.scroller = scroller;
    this.empty = empty;
    this.jump = jump;
    this.onChange = onChange;
    this.onName = onName;
    this.onNamed = onNamed;
    this.speakers = new Map(); // speakerKey → {slot, side}
    this.nextSlot = 0;
    this.renames = new Map(); // old speaker_id → {speaker_id, speaker, speaker_kind} (for finals still to come)
    this.pending = new Map(); // peer:utterance → element
    this.anchors = new Map(); // peer:utterance → last element placed for it
    this.seen = new Set(); // peer:utterance:turn of finals shown
    this.nodes = new Map(); // peer:utterance:turn → the final's bubble (for its sentiment update)
    this.marks = new Map(); // peer:utterance:turn → a sentiment that came before its final was shown
    this.stats = this._statsLine();
    this.editor = null; // the open name editor: {speakerId, form, request}
    this.naming = true; // whether this connection may name speakers (`ready`'s grants); see allowNaming()
    this.stick = true; // follow the newest bubble
    scroller.addEventListener("scroll", () => {
      this.stick = this.atBottom();
      if (this.stick && this.jump) this.jump.hidden = true;
    }, { passive: true });
    if (jump) jump.addEventListener("click", () => this.scrollToEnd());
    scroller.addEventListener("click", (e) => {
      const label = e.target.closest("button.name-edit");
      if (label) this.openEditor(label.closest(".msg").dataset.speakerId);
    });
  }

  atBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 40;
  }

  scrollToEnd() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.stick = true;
    if (this.jump) this.jump.hidden = true;
  }

  /** Feed one data-channel event. Returns true when the event was the chat's (bubbles, relabels, naming). */
  handle(msg) {
    if (msg.type === "speaker_named" || msg.type === "error") return this._namingReply(msg);
    const follow = this.stick;
    let changed = false;
    if (msg.type === "speech_started" || msg.type === "partial") changed = this._pending(msg);
    else if (msg.type === "final") changed = this._final(msg);
    else if (msg.type === "speaker_relabeled") changed = this._relabel(msg);
    else if (msg.type === "sentiment") changed = this._sentiment(msg);
    else return false;
    if (changed) this._changed(follow);
    return true;
  }

  /** The finals shown, in chat order, with their current speaker (what the export writes). */
  finals() {
    return [...this.scroller.querySelectorAll(".msg.final")].map((node) => node.final);
  }

  /** Remove the "Speaking…" bubbles of utterances that will get no final (the call ended, the link dropped). */
  dropPending() {
    if (!this.pending.size) return;
    this.pending.forEach((node) => node.remove());
    this.pending.clear();
    this._changed(this.stick);
  }

  clear() {
    this.scroller.querySelectorAll(".msg").forEach((node) => node.remove());
    this.pending.clear();
    this.anchors.clear();
    this.seen.clear();
    this.nodes.clear();
    this.marks.clear();
    this.speakers.clear();
    this.renames.clear();
    this.nextSlot = 0;
    this.editor = null;
    this._changed(true);
  }

  /**
   * Show a stored conversation (a session's `utterances`, relabels already applied) as this chat: the same
   * bubbles, sides and colours as live. Utterances without `utterance_id` are numbered in order. Opens at the top.
   */
  showStored(utterances) {
    this.clear();
    utterances.forEach((u, i) => this._final({ type: "final", turn: 0, last_turn: true, ...u,
      utterance_id: u.utterance_id ?? i }));
    this._changed(false);
    if (this.jump) this.jump.hidden = true;
    this.scroller.scrollTop = 0;
    this.stick = this.atBottom();
  }

  // -- naming ---------------------------------------------------------------------------------
  /** Whether this connection may name speakers (false: e.g. a viewer link; labels stay plain text). */
  allowNaming(allowed) {
    if (this.naming === allowed) return;
    this.naming = allowed;
    if (!allowed) this.closeEditor();
    this.scroller.querySelectorAll(".msg.final").forEach((node) => this._applySpeaker(node, node.final));
  }

  /** Open the inline "name this speaker" editor under the newest bubble of `speakerId` (an anonymous one). */
  openEditor(speakerId) {
    if (!this.onName || !this.naming) return;
    this.closeEditor();
    const nodes = this._nodesOf(speakerId);
    const node = nodes[nodes.length - 1];
    if (!node || node.dataset.speakerKind !== "anonymous") return;
    const label = node.dataset.speaker;
    const input = el("input", { type: "text", name: "name", maxlength: 64, required: true, autocomplete: "off",
      placeholder: "Name", "aria-label": `Name for ${label}` });
    const remember = el("input", { type: "checkbox", name: "save", checked: true });
    const note = el("div", { class: "name-note", role: "status", hidden: true });
    const form = el("form", { class: "name-editor", dataset: { speakerId } },
      el("div", { class: "name-row" }, input,
        el("button", { class: "btn btn-primary btn-sm", type: "submit", "data-action": "save" }, "Save"),
        el("button", { class: "btn btn-ghost btn-sm", type: "button", "data-action": "cancel",
          onclick: () => this.closeEditor() }, "Cancel")),
      el("label", { class: "name-remember" }, remember, " Remember this voice"),
      note);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this._sendName({ name: input.value.trim(), save: remember.checked, extend: false });
    });
    form.addEventListener("keydown", (e) => {
      if (e.key !== "Escape") return;
      e.preventDefault();
      e.stopPropagation(); // Esc closes the editor; it must not reach the page (the call page stops on Esc)
      this.closeEditor();
    });
    node.querySelector(".body").append(form);
    this.editor = { speakerId, form, input, note, request: null };
    input.focus();
  }

  closeEditor() {
    if (this.editor) this.editor.form.remove();
    this.editor = null;
  }

  _sendName({ name, save, extend }) {
    const ed = this.editor;
    if (!ed) return;
    if (!name) { ed.input.focus(); return; }
    if (name.toLowerCase() === UNKNOWN) {
      this._note("“unknown” is reserved for voices that cannot be placed; pick another name.");
      return;
    }
    const request = { type: "name_speaker", speaker_id: ed.speakerId, name, save, extend };
    if (!this.onName(request)) {
      showBanner("Not connected", "The speaker can be named while connected to the server.", "info");
      return;
    }
    ed.request = request;
    ed.form.classList.add("busy");
    ed.form.querySelectorAll("input, button").forEach((c) => { c.disabled = true; });
  }

  _note(text, ...actions) {
    const ed = this.editor;
    ed.note.replaceChildren(el("span", {}, text), ...actions);
    ed.note.hidden = false;
  }

  _unbusy() {
    const ed = this.editor;
    ed.request = null;
    ed.form.classList.remove("busy");
    ed.form.querySelectorAll("input, button").forEach((c) => { c.disabled = false; });
  }

  /** `speaker_named` / an error while a `name_speaker` is outstanding. */
  _namingReply(msg) {
    const ed = this.editor;
    if (msg.type === "speaker_named") {
      if (ed && ed.speakerId === msg.speaker_id) this.closeEditor();
      if (this.onNamed) this.onNamed(msg);
      return true;
    }
    if (!ed || !ed.request || !NAMING_ERRORS.has(msg.code)) return false;
    const { request } = ed;
    this._unbusy();
    if (msg.code === "name_taken") {
      this._note(`A voice named “${request.name}” is already saved. Is this the same person?`,
        el("button", { class: "btn btn-sm", type: "button", "data-action": "extend",
          onclick: () => this._sendName({ ...request, save: true, extend: true }) },
        `Add to ${request.name}'s voice`));
      return true;
    }
    const why = { not_found: "This speaker is no longer in the room.", invalid_name: "That name cannot be used.",
      not_in_room: "This page is not connected to that room.", not_anonymous: "This speaker already has a name.",
      forbidden: "Your invite link does not allow naming speakers." };
    const said = msg.message ? `${msg.message[0].toUpperCase()}${msg.message.slice(1)}.` : "";
    showBanner("Could not name the speaker", `${said || why[msg.code] || "The server refused the name."} (${msg.code})`);
    ed.input.focus();
    return true;
  }

  // -- internals ------------------------------------------------------------------------------
  _changed(follow) {
    if (this.empty) this.empty.hidden = this.scroller.querySelector(".msg") !== null;
    this._renderStats();
    if (follow) this.scrollToEnd();
    else if (this.jump) this.jump.hidden = false;
    if (this.onChange) this.onChange(this);
  }

  _speaker(key) {
    let spk = this.speakers.get(key);
    if (!spk) {
      const slot = this.nextSlot++;
      spk = { slot, side: slot % 2 === 0 ? "left" : "right" };
      this.speakers.set(key, spk);
    }
    return spk;
  }

  _nodesOf(speakerId) {
    return [...this.scroller.querySelectorAll(".msg.final")].filter((n) => n.dataset.speakerId === speakerId);
  }

  _relabel(msg) {
    const to = { speaker_id: msg.speaker_id, speaker: msg.speaker, speaker_kind: msg.speaker_kind };
    for (const [old, target] of this.renames) if (target.speaker_id === msg.from_id) this.renames.set(old, to);
    if (msg.from_id !== msg.speaker_id) this.renames.set(msg.from_id, to);
    const fromKey = `id:${msg.from_id}`;
    const toKey = speakerKey(msg);
    if (fromKey !== toKey && this.speakers.has(fromKey)) {
      // named/enrolled: the new identity keeps the bubbles' slot; merged into a known speaker: take theirs
      if (!this.speakers.has(toKey)) this.speakers.set(toKey, this.speakers.get(fromKey));
      this.speakers.delete(fromKey);
    }
    const nodes = this._nodesOf(msg.from_id);
    nodes.forEach((node) => this._applySpeaker(node, { ...node.final, ...to }));
    if (this.editor && this.editor.speakerId === msg.from_id) this.closeEditor();
    return nodes.length > 0;
  }

  // -- sentiment ------------------------------------------------------------------------------
  _sentiment(msg) {
    if (!SENTIMENTS.includes(msg.label)) return false;
    const id = `${msg.peer_id || ""}:${msg.utterance_id}:${msg.turn || 0}`;
    const mark = { label: msg.label, score: Number(msg.score) || 0 };
    const node = this.nodes.get(id);
    if (!node || !node.isConnected) {
      if (!this.seen.has(id)) this.marks.set(id, mark); // its final is still to come (or was noise)
      return false;
    }
    this._applySentiment(node, mark);
    return true;
  }

  /** Mark `node`'s bubble with `mark` ({label, score}) and keep it on the final (the export writes it). */
  _applySentiment(node, mark) {
    node.final = { ...node.final, sentiment: mark };
    node.dataset.sentiment = mark.label;
    const score = `${Math.round(mark.score * 100)} %`;
    const tag = el("span", { class: `sentiment ${mark.label}`, title: `Sentiment: ${mark.label} (confidence ${score})`,
      "aria-label": `sentiment ${mark.label}, confidence ${score}` },
    el("span", { class: "sentiment-dot", "aria-hidden": "true" }), mark.label);
    const old = $(".sentiment", node);
    if (old) old.replaceWith(tag);
    else $(".meta", node).append(tag);
  }

  /** The stats line: made once, above the chat's scrolling area (every page that uses the chat gets it). */
  _statsLine() {
    const wrap = this.scroller.closest(".chat-wrap");
    if (!wrap) return null;
    const line = el("div", { class: "sentiment-stats", role: "group", "aria-label": "Sentiment", hidden: true });
    wrap.before(line);
    return line;
  }

  _renderStats() {
    if (!this.stats) return;
    const all = { n: 0, positive: 0, negative: 0, neutral: 0 };
    const per = new Map(); // speakerKey → {label, slot, unknown, counts}
    for (const node of this.scroller.querySelectorAll(".msg.final")) {
      const who = speakerKey(node.final);
      if (!per.has(who)) {
        per.set(who, { label: node.dataset.speaker, slot: this._speaker(who).slot, unknown: who === UNKNOWN,
          counts: { n: 0, positive: 0, negative: 0, neutral: 0 } });
      }
      const mark = node.final.sentiment;
      if (!mark || !SENTIMENTS.includes(mark.label)) continue;
      for (const c of [all, per.get(who).counts]) { c.n += 1; c[mark.label] += 1; }
    }
    if (!all.n) {
      this.stats.hidden = true;
      this.stats.replaceChildren();
      return;
    }
    const item = (name, counts, cls) => el("li", { class: `sentiment-total ${cls}`, dataset: { speaker: name },
      title: `${name}: ${counts.n} scored · neutral: ${share(counts, "neutral")}` },
    el("span", { class: "who" }, name),
    el("span", { class: "bar", "aria-hidden": "true" }, SENTIMENTS.map((label) => el("i", { class: label,
      style: `flex-grow: ${counts[label]}` }))),
    el("span", { class: "how" }, sentimentSummary(counts)));
    const speakers = [...per.values()].filter((s) => s.counts.n).sort((a, b) => a.slot - b.slot);
    this.stats.replaceChildren(
      el("span", { class: "label" }, "Sentiment"),
      el("ul", { class: "sentiment-totals" }, item("Session", all, "all"),
        speakers.map((s) => item(s.label, s.counts, s.unknown ? "unknown" : `spk-${s.slot % COLOURS}`))));
    this.stats.hidden = false;
  }

  _pending(msg) {
    const key = `${msg.peer_id || ""}:${msg.utterance_id}`;
    let node = this.pending.get(key);
    const text = msg.type === "partial" ? (msg.text || "").trim() : "";
    if (!node) {
      if (this.anchors.has(key)) return false; // a final of this utterance is already shown
      node = el("div", { class: "msg pending side-left", dataset: { key, utterance: msg.utterance_id } },
        el("div", { class: "avatar", "aria-hidden": "true" }, "…"),
        el("div", { class: "body" },
          el("div", { class: "meta" },
            el("span", { class: "name" }, msg.caller ? `${msg.caller} · speaking` : "Speaking"),
            el("span", { class: "time" }, mmss(msg.start))),
          el("div", { class: "bubble" }, el("span", { class: "text" }),
            el("span", { class: "typing", "aria-label": "transcribing" }, el("i"), el("i"), el("i")))));
      this.scroller.append(node);
      this.pending.set(key, node);
    }
    if (text) node.querySelector(".text").textContent = text; // a partial replaces the one before
    return true;
  }

  _final(msg) {
    const key = `${msg.peer_id || ""}:${msg.utterance_id}`;
    const id = `${key}:${msg.turn || 0}`;
    if (this.seen.has(id)) return false; // e.g. the backlog again after a reconnect
    this.seen.add(id);
    const pending = this.pending.get(key);
    const text = (msg.text || "").trim();
    if (!text) {
      // noise: nothing to show; the utterance is settled when this was its last turn
      if (pending && msg.last_turn !== false) {
        pending.remove();
        this.pending.delete(key);
      }
      return Boolean(pending);
    }
    const renamed = msg.speaker_id != null && this.renames.get(msg.speaker_id);
    const node = this._bubble(renamed ? { ...msg, ...renamed } : msg, key, text);
    const anchor = this.anchors.get(key);
    if (pending) {
      pending.replaceWith(node);
      this.pending.delete(key);
    } else if (anchor && anchor.isConnected) {
      anchor.after(node);
    } else {
      this.scroller.append(node);
    }
    this.anchors.set(key, node); // later turns go after it; a late partial must not reopen the utterance
    this.nodes.set(id, node);
    const early = this.marks.get(id);
    if (early) {
      this.marks.delete(id);
      this._applySentiment(node, early);
    }
    return true;
  }

  _bubble(msg, key, text) {
    const title = [msg.caller && `caller: ${msg.caller}`, msg.language && `language: ${msg.language}`,
      msg.score != null && `voice match ${Number(msg.score).toFixed(2)} (${msg.speaker_reason})`]
      .filter(Boolean).join(" · ");
    const node = el("div", { title: title || null, dataset: { key, utterance: msg.utterance_id, turn: msg.turn || 0,
      start: msg.start } },
    el("div", { class: "avatar", "aria-hidden": "true" }),
    el("div", { class: "body" },
      el("div", { class: "meta" }, el("span", { class: "name" }), el("span", { class: "time" }, mmss(msg.start))),
      el("div", { class: "bubble" }, text)));
    this._applySpeaker(node, msg);
    if (msg.sentiment && SENTIMENTS.includes(msg.sentiment.label)) this._applySentiment(node, msg.sentiment);
    return node;
  }

  /** Draw `node` as a bubble of `msg`'s speaker (side, colour, label, avatar) and keep `msg` for the export. */
  _applySpeaker(node, msg) {
    const who = speakerKey(msg);
    const unknown = who === UNKNOWN;
    const speaker = unknown ? msg.speaker || UNKNOWN : msg.speaker || msg.speaker_id;
    const kind = unknown ? UNKNOWN : msg.speaker_kind || "";
    const spk = this._speaker(who);
    node.className = ["msg", "final", `side-${spk.side}`, `spk-${spk.slot % COLOURS}`, unknown ? UNKNOWN : "",
      kind === "anonymous" ? "anonymous" : ""].filter(Boolean).join(" ");
    Object.assign(node.dataset, { speaker, speakerId: unknown ? "" : msg.speaker_id, speakerKind: kind });
    $(".avatar", node).textContent = unknown ? "?" : initials(speaker);
    const nameable = kind === "anonymous" && this.onName && this.naming;
    const label = nameable
      ? el("button", { class: "name name-edit", type: "button", title: `Name ${speaker}`,
        "aria-label": `${speaker} — name this speaker` }, speaker, el("span", { class: "pen", "aria-hidden": "true" }, "✎"))
      : el("span", { class: "name" }, speaker);
    $(".name", node).replaceWith(label);
    node.final = msg;
  }
}

/** "positive: 12 (60 %) / negative: 3 (15 %)" from {n, positive, negative, neutral} (shares of the scored). */
export function sentimentSummary(counts) {
  return `positive: ${share(counts, "positive")} / negative: ${share(counts, "negative")}`;
}

function share(counts, label) {
  const n = counts[label] || 0;
  return `${n} (${counts.n ? Math.round((100 * n) / counts.n) : 0} %)`;
}

function initials(name) {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[1][0] : [...(parts[0] || "?")].slice(0, 1).join("");
  return letters.toUpperCase();
}
