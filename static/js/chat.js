// The messenger-style transcript, shared by the call page and the room view.
//
// One bubble per final (key: peer_id + utterance_id + turn). speech_started / partial open a pending bubble
// for the utterance that updates in place; the utterance's first final replaces it, later turns follow it,
// and a final with empty text (noise) removes it. The first distinct speaker sits on the left, the second
// on the right (like a two-person messenger), later ones alternate sides and get their own colours;
// "unknown" is drawn grey, italic, with a dashed border. A speaker is its stable identity (protocol 2:
// `speaker_id`, e.g. "profile:3"), not its label: a renamed profile keeps its side and colour. Every final
// without an id (`speaker_kind` "unknown") shares the one unknown slot. The label shown is `speaker`.

import { el } from "./ui.js";

const UNKNOWN = "unknown";
const COLOURS = 8;

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
   *                       onChange: called after every change}
   */
  constructor(scroller, { empty = null, jump = null, onChange = null } = {}) {
    this.scroller = scroller;
    this.empty = empty;
    this.jump = jump;
    this.onChange = onChange;
    this.speakers = new Map(); // speakerKey → {slot, side}
    this.pending = new Map(); // peer:utterance → element
    this.anchors = new Map(); // peer:utterance → last element placed for it
    this.seen = new Set(); // peer:utterance:turn of finals shown
    this.stick = true; // follow the newest bubble
    scroller.addEventListener("scroll", () => {
      this.stick = this.atBottom();
      if (this.stick && this.jump) this.jump.hidden = true;
    }, { passive: true });
    if (jump) jump.addEventListener("click", () => this.scrollToEnd());
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

  /** Feed one data-channel event; anything but speech_started / partial / final is ignored. */
  handle(msg) {
    const follow = this.stick;
    let changed = false;
    if (msg.type === "speech_started" || msg.type === "partial") changed = this._pending(msg);
    else if (msg.type === "final") changed = this._final(msg);
    if (!changed) return;
    if (this.empty) this.empty.hidden = this.scroller.querySelector(".msg") !== null;
    if (follow) this.scrollToEnd();
    else if (this.jump) this.jump.hidden = false;
    if (this.onChange) this.onChange(this);
  }

  /** The finals shown, in chat order (what the export writes). */
  finals() {
    return [...this.scroller.querySelectorAll(".msg.final")].map((node) => node.final);
  }

  clear() {
    this.scroller.querySelectorAll(".msg").forEach((node) => node.remove());
    this.pending.clear();
    this.anchors.clear();
    this.seen.clear();
    this.speakers.clear();
    if (this.empty) this.empty.hidden = false;
    if (this.onChange) this.onChange(this);
  }

  // -- internals ------------------------------------------------------------------------------
  _speaker(key) {
    let spk = this.speakers.get(key);
    if (!spk) {
      const slot = this.speakers.size;
      spk = { slot, side: slot % 2 === 0 ? "left" : "right" };
      this.speakers.set(key, spk);
    }
    return spk;
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
    if (text) node.querySelector(".text").textContent = text;
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
    const node = this._bubble(msg, key, text);
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
    return true;
  }

  _bubble(msg, key, text) {
    const speaker = msg.speaker || UNKNOWN;
    const who = speakerKey(msg);
    const unknown = who === UNKNOWN;
    const spk = this._speaker(who);
    const cls = ["msg", "final", `side-${spk.side}`, `spk-${spk.slot % COLOURS}`, unknown ? "unknown" : ""];
    const title = [msg.caller && `caller: ${msg.caller}`, msg.language && `language: ${msg.language}`,
      msg.score != null && `voice match ${Number(msg.score).toFixed(2)} (${msg.speaker_reason})`]
      .filter(Boolean).join(" · ");
    const node = el("div", {
      class: cls.join(" ").trim(), title: title || null,
      dataset: { key, utterance: msg.utterance_id, turn: msg.turn || 0, speaker, start: msg.start,
        speakerId: unknown ? "" : msg.speaker_id, speakerKind: unknown ? UNKNOWN : msg.speaker_kind || "" },
    },
    el("div", { class: "avatar", "aria-hidden": "true" }, unknown ? "?" : initials(speaker)),
    el("div", { class: "body" },
      el("div", { class: "meta" },
        el("span", { class: "name" }, speaker),
        el("span", { class: "time" }, mmss(msg.start))),
      el("div", { class: "bubble" }, text)));
    node.final = msg;
    return node;
  }
}

function initials(name) {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[1][0] : [...(parts[0] || "?")].slice(0, 1).join("");
  return letters.toUpperCase();
}
