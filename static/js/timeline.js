// The speaker timeline of an analysed recording (SVG): one row per speaker with its share of the talk, a bar per
// segment and a time axis, drawn to the panel's width (again when it changes). Pointing at a bar shows what was
// said in a tooltip; a click pins it, with a button that asks the page to show the segment in the transcript.

import { el } from "./ui.js";
import { duration, hms, percent, stamp } from "./format.js";
import { colourClass, segmentsOf, segmentsTalk } from "./speakerrows.js";

const SVG = "http://www.w3.org/2000/svg";

/** A "nice" tick step (s) so that ticks are at least `minPx` apart on a `scale` px/s axis. */
function tickStep(scale, minPx) {
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
  return steps.find((s) => s * scale >= minPx) || steps[steps.length - 1];
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) node.setAttribute(k, v);
  children.flat().forEach((c) => c != null && node.append(c instanceof Node ? c : document.createTextNode(String(c))));
  return node;
}

function segmentAt(target) {
  const rect = target && target.closest && target.closest(".tl-seg");
  return rect ? Number(rect.dataset.index) : null;
}

export class Timeline {
  /**
   * @param {HTMLElement} box where the picture goes (#timeline)
   * @param {object} options
   * @param {HTMLElement} options.panel the tab panel around it: nothing is drawn while it is hidden
   * @param {() => ({result: object, rows: object[]}|null)} options.data the result and its speaker rows
   *   (speakerRows), or null when there is none
   * @param {(segment: object) => void} options.onJump "Show in transcript" of a pinned segment
   */
  constructor(box, { panel, data, onJump }) {
    this.box = box;
    this.panel = panel;
    this.data = data;
    this.onJump = onJump;
    this.drawn = null; // {segments, total, tip, width} of the picture shown
    this.pinned = null; // the index of the segment pinned by a click
    this.wire();
  }

  /** Draw the timeline of the current result (when its panel is shown). */
  render() {
    const box = this.box;
    const data = this.data();
    if (!data || !data.result || this.panel.hidden) return;
    const { result } = data;
    const rows = data.rows.filter((r) => r.segments.length || (r.stats && r.stats.talk_time_s));
    const segments = segmentsOf(result);
    if (!rows.length) {
      box.replaceChildren(el("p", { class: "sessions-empty" }, "Nobody spoke in this recording: there is nothing to draw."));
      box.dataset.rows = "0";
      this.drawn = null;
      return;
    }
    const total = Math.max(Number(result.duration_s) || 0, ...segments.map((s) => Number(s.end) || 0), 1);
    const width = Math.max(300, Math.floor(box.clientWidth || 600));
    const narrow = width < 520;
    const labelW = narrow ? 86 : 150;
    const rowH = narrow ? 28 : 36;
    const gap = 8;
    const axisH = 24;
    const right = 12;
    const plotW = width - labelW - right;
    const scale = plotW / total;
    const height = axisH + rows.length * (rowH + gap) + 4;
    const step = tickStep(scale, narrow ? 48 : 64);
    const talkTotal = rows.reduce((sum, r) => sum + segmentsTalk(r), 0);

    const axis = svg("g", { class: "tl-axis" });
    for (let t = 0; t <= total + 1e-6; t += step) {
      const x = labelW + t * scale;
      axis.append(svg("line", { class: "tl-grid", x1: x, x2: x, y1: axisH - 4, y2: height - 2 }),
        svg("text", { class: "tl-tick", x, y: axisH - 9,
          "text-anchor": t === 0 ? "start" : x > width - 24 ? "end" : "middle" }, hms(t)));
    }
    const end = labelW + total * scale;
    axis.append(svg("line", { class: "tl-grid tl-end", x1: end, x2: end, y1: axisH - 4, y2: height - 2 }));

    const groups = rows.map((row, i) => {
      const y = axisH + i * (rowH + gap);
      const talk = segmentsTalk(row);
      const name = row.speaker || "unknown";
      const maxChars = narrow ? 9 : 16;
      const shown = name.length > maxChars ? `${name.slice(0, maxChars - 1)}…` : name;
      return svg("g", { class: `tl-row ${colourClass(row)}`, "data-speaker": name },
        svg("rect", { class: "tl-lane", x: labelW, y, width: plotW, height: rowH, rx: 6 }),
        svg("circle", { class: "tl-dot", cx: 7, cy: y + rowH / 2, r: 5 }),
        svg("text", { class: "tl-name", x: 18, y: y + rowH / 2 - (narrow ? 0 : 5), "dominant-baseline": "middle" },
          svg("title", {}, name), shown),
        narrow ? null : svg("text", { class: "tl-share", x: 18, y: y + rowH / 2 + 9, "dominant-baseline": "middle" },
          `${percent(talk, talkTotal)} % · ${hms(talk)}`),
        row.segments.map((seg) => svg("rect", {
          class: "tl-seg", x: (labelW + seg.start * scale).toFixed(2), y: y + 3,
          width: Math.max(1.5, (seg.end - seg.start) * scale).toFixed(2), height: rowH - 6, rx: 2,
          "data-index": seg.index })));
    });
    const picture = svg("svg", { class: "timeline-svg", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": `Speaker timeline: ${rows.length} speakers over ${duration(total)}` }, axis, groups);
    const tip = el("div", { class: "tl-tip", role: "tooltip", hidden: true });
    box.replaceChildren(picture, tip);
    box.dataset.rows = String(rows.length);
    this.drawn = { segments, total, tip, width: box.clientWidth };
    if (this.pinned != null) this.showTooltip(this.pinned, null, true);
  }

  /** Remove the picture (another job is opened). */
  clear() {
    this.close();
    this.box.replaceChildren();
  }

  /** Close the tooltip, pinned or not. */
  close() {
    this.pinned = null;
    if (this.drawn) this.drawn.tip.hidden = true;
    this.box.querySelectorAll(".tl-seg.on").forEach((r) => r.classList.remove("on"));
  }

  showTooltip(index, event, pinned = false) {
    const tl = this.drawn;
    if (!tl) return;
    const seg = tl.segments[index];
    if (!seg) return;
    const { tip } = tl;
    tip.replaceChildren(
      el("div", { class: "tl-tip-head" }, el("b", {}, seg.speaker || "unknown"), ` · ${stamp(seg.start)}–${stamp(seg.end)}`),
      el("div", { class: "tl-tip-text" }, seg.text),
      ...(pinned ? [el("button", { class: "btn btn-sm tl-tip-go", type: "button", onclick: () => this.onJump(seg) },
        "Show in transcript →")] : []));
    tip.hidden = false;
    tip.classList.toggle("pinned", pinned);
    const rect = this.box.querySelector(`.tl-seg[data-index="${index}"]`);
    // fixed to the window (the card clips what sticks out of it): below the pointer or bar, else above it
    let x;
    let below;
    let above;
    if (event && !pinned) {
      x = event.clientX;
      below = event.clientY + 16;
      above = event.clientY - 10;
    } else if (rect) {
      const r = rect.getBoundingClientRect();
      x = r.left + r.width / 2;
      below = r.bottom + 8;
      above = r.top - 8;
    } else return;
    const w = tip.offsetWidth;
    const h = tip.offsetHeight;
    const vw = document.documentElement.clientWidth;
    tip.style.left = `${Math.max(6, Math.min(vw - w - 6, x - w / 2))}px`;
    tip.style.top = `${below + h <= window.innerHeight - 6 || above - h < 60 ? below : above - h}px`;
    this.box.querySelectorAll(".tl-seg.on").forEach((r) => r.classList.remove("on"));
    if (rect) rect.classList.add("on");
  }

  /** Pointer, click, Escape, scroll and resize handling. */
  wire() {
    const { box } = this;
    const hideTip = () => { if (this.drawn) this.drawn.tip.hidden = true; };
    box.addEventListener("pointermove", (e) => {
      if (this.pinned != null || e.pointerType === "touch") return;
      const index = segmentAt(e.target);
      if (index == null) { hideTip(); return; }
      this.showTooltip(index, e);
    });
    box.addEventListener("pointerleave", () => { if (this.pinned == null) hideTip(); });
    box.addEventListener("click", (e) => {
      if (e.target.closest(".tl-tip")) return;
      const index = segmentAt(e.target);
      if (index == null) { this.close(); return; }
      this.pinned = index;
      this.showTooltip(index, e, true);
    });
    document.addEventListener("keydown", (e) => { if (e.key === "Escape" && this.pinned != null) this.close(); });
    // the tooltip is fixed to the window: it goes when what it points at scrolls
    const close = () => this.close();
    this.panel.addEventListener("scroll", close, { passive: true });
    window.addEventListener("scroll", close, { passive: true });
    let resizeTimer = null;
    new ResizeObserver(() => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => {
        if (!this.drawn || this.drawn.width !== box.clientWidth) this.render();
      }, 120);
    }).observe(this.panel);
  }
}
