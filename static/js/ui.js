// Small DOM helpers shared by the pages: element builder, error banner, confirmation dialog, connection badge.

import { describeError } from "./net.js";

export const $ = (selector, root = document) => root.querySelector(selector);

/** el("div", {class: "x", onclick: f}, child, "text", …) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const ICONS = { error: "!", warn: "!", info: "i" };

/** Show a message in the page's banner (#banner). kind: error | warn | info. */
export function showBanner(title, text, kind = "error") {
  const banner = $("#banner");
  banner.replaceChildren(
    el("div", { class: "banner-icon", "aria-hidden": "true" }, ICONS[kind] || ICONS.error),
    el("div", { class: "banner-text" }, el("div", { class: "banner-title" }, title), el("div", {}, text)),
    el("button", { class: "banner-close", type: "button", "aria-label": "Dismiss", onclick: hideBanner }, "×"),
  );
  banner.dataset.kind = kind;
  banner.hidden = false;
  clearTimeout(showBanner.timer);
  if (kind === "info") showBanner.timer = setTimeout(hideBanner, 6000);
}

export function showError(err) {
  const { title, text } = describeError(err);
  showBanner(title, text, err && err.name === "ServerBusy" ? "warn" : "error");
  console.warn("callscribe:", err);
}

/** Open the modal `dialog` (a <dialog> with a method=dialog form) with its [data-action=cancel] button focused;
 * resolves to the value of the button that closed it ("" for Escape). */
export function askDialog(dialog) {
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    dialog.querySelector("[data-action=cancel]").focus();
  });
}

export function hideBanner() {
  const banner = $("#banner");
  if (banner) banner.hidden = true;
}

const BADGE_TEXT = { idle: "Not connected", connecting: "Connecting…", connected: "Connected", live: "Live",
  waiting: "Waiting for a caller", reconnecting: "Reconnecting…", ended: "Ended" };

/** The connection badge (#state): `state` is its data-state, `text` overrides the words shown. */
export function setBadge(state, text = null) {
  const badge = $("#state");
  badge.dataset.state = state;
  badge.textContent = text || BADGE_TEXT[state] || state;
}
