// The Voices card's map: where the enrolled voices sit relative to each other (GET /api/profiles/map: a 2-D
// layout of the voice profiles' embeddings, and the pairs that are so close they would be confused), drawn as
// a labelled SVG scatter scaled to fit, with one warning line per close pair.

import { api } from "./net.js";
import { el } from "./ui.js";

const NS = "http://www.w3.org/2000/svg";
const W = 320;
const H = 190;
const PAD_X = 18;
const PAD_Y = 22;
const LABEL_H = 14; // px of one label line (font-size 12)
const CHAR_W = 7.4; // rough width of a label character (12 px, bold), to keep labels apart

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) node.setAttribute(k, String(v));
  children.forEach((c) => node.append(c instanceof Node ? c : document.createTextNode(String(c))));
  return node;
}

/** The points' coordinates mapped into the drawing: one scale for both axes (distances keep their meaning),
 * centred. Labels point inwards (see `labels`), so the outermost dots may sit near the edges. */
function place(points) {
  const xs = points.map((p) => Number(p.x) || 0);
  const ys = points.map((p) => Number(p.y) || 0);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const spanX = W - 2 * PAD_X;
  const spanY = H - 2 * PAD_Y;
  const dx = x1 - x0;
  const dy = y1 - y0;
  const scale = Math.min(dx > 0 ? spanX / dx : Infinity, dy > 0 ? spanY / dy : Infinity);
  const k = Number.isFinite(scale) ? scale : 0;
  return points.map((p, i) => ({
    name: String(p.name),
    // y grows upwards in the layout, downwards on screen
    cx: W / 2 + (xs[i] - (x0 + x1) / 2) * k,
    cy: H / 2 - (ys[i] - (y0 + y1) / 2) * k,
  }));
}

/** Label positions: beside the dot, towards the middle (the side with more room), nudged apart vertically when
 * they would overlap. */
function labels(placed) {
  const boxes = [];
  return placed.map((p) => {
    const width = p.name.length * CHAR_W;
    const right = p.cx <= W / 2;
    const x = right ? p.cx + 8 : p.cx - 8;
    const left = right ? x : x - width;
    let y = p.cy + 4;
    const clash = (yy) => boxes.some((b) => left < b.right && left + width > b.left && Math.abs(yy - b.y) < LABEL_H);
    for (let step = 1; clash(y) && step < 12; step += 1) {
      y = p.cy + 4 + (step % 2 ? 1 : -1) * Math.ceil(step / 2) * LABEL_H;
    }
    y = Math.min(H - 4, Math.max(LABEL_H - 2, y));
    boxes.push({ left, right: left + width, y });
    return { x, y, anchor: right ? "start" : "end" };
  });
}

/** The warning for one close pair, in plain words. */
export function closePairText(pair) {
  const sim = pair.similarity != null ? ` (similarity ${Number(pair.similarity).toFixed(2)})` : "";
  return `${pair.a} and ${pair.b} sound like one voice${sim} — delete one or rename`;
}

/** Draw `map` ({points, close_pairs, threshold}) into `root` (an element of the Voices card). */
export function drawVoiceMap(root, map) {
  const points = (map && Array.isArray(map.points) ? map.points : []).filter((p) => p && p.name != null);
  const pairs = (map && Array.isArray(map.close_pairs) ? map.close_pairs : []);
  if (points.length < 2) {
    root.replaceChildren(el("p", { class: "voice-map-hint" },
      points.length ? "Enroll a second voice to see how the voices sit relative to each other."
        : "Once two or more voices are enrolled, this map shows how alike they sound."));
    return;
  }
  const placed = place(points);
  const at = new Map(placed.map((p) => [p.name, p]));
  const close = new Set(pairs.flatMap((p) => [String(p.a), String(p.b)]));
  const drawing = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "voice-map-svg", role: "img",
    "aria-label": `Voice map of ${points.length} enrolled voices` });
  drawing.append(svg("rect", { class: "vm-frame", x: 0.5, y: 0.5, width: W - 1, height: H - 1, rx: 10 }));
  drawing.append(svg("path", { class: "vm-axis", d: `M${W / 2} 10V${H - 10}M10 ${H / 2}H${W - 10}` }));
  for (const pair of pairs) {
    const a = at.get(String(pair.a));
    const b = at.get(String(pair.b));
    if (a && b) drawing.append(svg("line", { class: "vm-close", x1: a.cx, y1: a.cy, x2: b.cx, y2: b.cy }));
  }
  const spots = labels(placed);
  placed.forEach((p, i) => {
    const warn = close.has(p.name);
    drawing.append(svg("g", { class: `vm-point${warn ? " close" : ""}`, "data-name": p.name },
      svg("title", {}, warn ? `${p.name}: very close to another voice` : p.name),
      svg("circle", { cx: p.cx, cy: p.cy, r: 5.5 }),
      svg("text", { x: spots[i].x, y: spots[i].y, "text-anchor": spots[i].anchor }, p.name)));
  });
  const warnings = pairs.map((pair) => el("li", { class: "voice-warning", dataset: { a: pair.a, b: pair.b } },
    closePairText(pair)));
  const hint = el("p", { class: "voice-map-hint" }, "Voices that sound alike sit close together.");
  if (warnings.length) root.replaceChildren(drawing, el("ul", { class: "voice-warnings" }, warnings), hint);
  else root.replaceChildren(drawing, hint);
}

/** Load GET /api/profiles/map into `root`; the section (`section`) hides when the server has no map. */
export async function loadVoiceMap(root, section = root) {
  let map;
  try {
    map = await api("/api/profiles/map");
  } catch (err) {
    section.hidden = true; // an older server without the route, or no access: the list says enough
    console.warn("callscribe: voice map unavailable", err);
    return;
  }
  section.hidden = false;
  drawVoiceMap(root, map);
}
