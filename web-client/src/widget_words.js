// The widget's words for its states: the shop's presence line, the connection banner, and the
// empty message list (kept apart from widget.js so every state has its sentence in one place).
import { ago } from "./ui.js";

/** The line under the shop's name: its status `p` as seen through client `c`. */
export function presenceLine(p, c) {
  const now = c ? c.now() : Date.now();
  if (p.status === "online") return "Online";
  if (p.status === "away") return "Away: replies may take a while";
  if (p.status === "unknown") {
    if (c && c.status === "offline") return "Status unknown while you are offline";
    return c && c.status === "reconnecting" ? "Status unknown while reconnecting" : "Status unknown";
  }
  return p.last_seen ? `Offline · last seen ${ago(p.last_seen, now)}` : "Offline: leave a message";
}

/** The banner over the messages: the connection's trouble, if any, and what happens to messages. */
export function bannerText(c, { fatal, toast }) {
  if (!c) return "Sign in on this site to chat with the shop.";
  const kept = "Your messages are kept and will be sent.";
  switch (c.status) {
    case "connecting":
      return "Connecting…";
    case "reconnecting":
      return c.problem === "token"
        ? `Reconnecting… signing in to the chat failed, trying again. ${kept}`
        : `Connection lost. Reconnecting… ${kept}`;
    case "offline":
      return `Waiting for network… you are offline. ${kept}`;
    case "stopped":
      if (fatal === 4001) return "The chat could not sign you in: your sign-in was refused. Please reload the page or sign in again.";
      return fatal ? "The chat stopped working on this page. Please reload the page." : "";
    case "idle":
      return toast ? "" : "You are signed out of the chat. Sign in on this site, then reload the page.";
    default:
      return "";
  }
}

/** What the message list says while there is no conversation to show (never a blank panel). */
export function emptyWords(c, shopName) {
  if (!c) return `Sign in on this site to chat with ${shopName}. Your conversation will show here.`;
  switch (c.status) {
    case "online":
      return "Opening the chat…";
    case "stopped":
      return "The chat cannot be used on this page right now. Reloading the page usually helps.";
    case "offline":
      return "You are offline. The chat opens when your network is back.";
    case "idle":
      return "You are signed out of the chat. Sign in on this site, then reload the page.";
    default:
      return c.problem === "token"
        ? "This site could not sign you in to the chat yet. We keep trying; reloading the page may help."
        : "Connecting to the chat…";
  }
}
