// The call page's Invite control, shown when the server has access control on (this tab holds a token, or the
// server answered 401): it mints invite links with POST /api/tokens {room, role: "viewer" | "speaker"} and copies
// `location.origin + url` to the clipboard, showing the link too (for browsers that refuse clipboard access).
// Without a token it offers a field for the operator's access key or an invite link instead.

import { access, apiJSON, describeError, getToken, setToken, tokenClaims } from "./net.js";
import { $ } from "./ui.js";

const ROLE_WORDS = {
  viewer: "Viewer link: follows the room's transcript live (no microphone)",
  speaker: "Speaker link: joins the call with a microphone",
};

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dateFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", hour: "numeric",
  minute: "2-digit" });

/** "15:42", or "3 Dec, 15:42" when not today, from Unix seconds or an ISO date; "" when unknown. */
function until(expiresAt) {
  const ms = typeof expiresAt === "number" ? expiresAt * 1000 : Date.parse(expiresAt);
  if (!Number.isFinite(ms)) return "";
  const date = new Date(ms);
  return date.toDateString() === new Date().toDateString() ? timeFormat.format(date) : dateFormat.format(date);
}

/** The token in `text`: the text itself, or the `token` parameter of a pasted invite link. */
function tokenFrom(text) {
  const value = text.trim();
  try {
    const url = new URL(value);
    return url.searchParams.get("token") || value;
  } catch {
    return value;
  }
}

/**
 * Wire the Invite card (#invite). `room()` gives the room to invite to (the call's, or the one typed in) or "";
 * `onToken()` runs after an access key or invite link was entered (e.g. to reload what needed it).
 */
export function wireInvite({ room, onToken }) {
  const card = $("#invite");
  const status = $("#invite-status");
  const say = (kind, text) => {
    status.dataset.state = kind;
    status.textContent = text;
    status.hidden = !text;
  };

  const show = () => {
    card.hidden = !access.required;
    const held = Boolean(getToken()) && !access.rejected; // a token the server accepts (as far as we know)
    const viewer = (tokenClaims() || {}).role === "viewer"; // a viewer link cannot invite (the server says 403)
    $("#invite-title").textContent = held ? "Invite" : "Access";
    $("#invite-actions").hidden = !held || viewer;
    if (held && viewer) {
      say("note", "You joined with a viewer link: you can follow the room; a speaker can invite others.");
    }
    $("#invite-result").hidden = !held || !$("#invite-link").value;
    $("#access-form").hidden = held;
    $("#access-prompt").textContent = access.rejected
      ? "This link was not accepted. Paste a new invite link, or your access key:"
      : "This server asks for access. Paste your access key or an invite link:";
  };

  async function mint(role, button) {
    const target = room();
    if (!target) {
      say("warn", "Type a room name above, or start the call, to invite people to its room.");
      $("#room").focus();
      return;
    }
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    say("processing", `Making a ${role} link for ${target}…`);
    try {
      const minted = await apiJSON("/api/tokens", "POST", { room: target, role });
      const link = location.origin + minted.url;
      $("#invite-link").value = link;
      $("#invite-link").dataset.role = minted.role || role;
      $("#invite-result").hidden = false;
      const valid = until(minted.expires_at);
      const words = `${ROLE_WORDS[minted.role || role] || role}${valid ? `, valid until ${valid}` : ""}.`;
      let copied = false;
      try {
        await navigator.clipboard.writeText(link);
        copied = true;
      } catch { /* no clipboard access (permission, insecure page): the link is shown to copy by hand */ }
      say(copied ? "done" : "warn", copied ? `Copied. ${words}`
        : `Copy the link above (this browser did not allow copying). ${words}`);
      if (!copied) $("#invite-link").select();
    } catch (err) {
      say("failed", describeError(err).text);
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }

  card.querySelectorAll("[data-invite]").forEach((button) => {
    button.addEventListener("click", () => mint(button.dataset.invite, button));
  });
  $("#invite-copy").addEventListener("click", async () => {
    const input = $("#invite-link");
    try {
      await navigator.clipboard.writeText(input.value);
      say("done", "Copied.");
    } catch {
      input.select();
      say("warn", "This browser did not allow copying: press Ctrl+C (⌘C) to copy the selected link.");
    }
  });
  $("#access-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = tokenFrom($("#access-key").value);
    if (!value) { $("#access-key").focus(); return; }
    setToken(value);
    $("#access-key").value = "";
    say("done", "Access key saved for this tab.");
    show();
    if (onToken) onToken();
  });
  window.addEventListener("callscribe:access", show);
  show();
}
