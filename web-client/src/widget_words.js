// The widget's words for its states: the shop's presence line, the connection banner, and the
// empty message list (kept apart from widget.js so every state has its sentence in one place;
// the sentences themselves are in i18n.js).
import { ago } from "./ui.js";
import { t } from "./i18n.js";

/** The line under the shop's name: its status `p` as seen through client `c`. */
export function presenceLine(p, c) {
  const now = c ? c.now() : Date.now();
  if (p.status === "online") return t("presOnline");
  if (p.status === "away") return t("presAway");
  if (p.status === "unknown") {
    if (c && c.status === "offline") return t("presUnknownOffline");
    return c && c.status === "reconnecting" ? t("presUnknownReconnecting") : t("presUnknown");
  }
  return p.last_seen ? t("presLastSeen", { ago: ago(p.last_seen, now) }) : t("presOffline");
}

/** The banner over the messages: the connection's trouble, if any, and what happens to messages. */
export function bannerText(c, { fatal, toast }) {
  if (!c) return t("signInToChat");
  const kept = t("kept");
  switch (c.status) {
    case "connecting":
      return t("connecting");
    case "reconnecting":
      return c.problem === "token" ? t("reconnectingToken", { kept }) : t("reconnectingLost", { kept });
    case "offline":
      return t("waitingNetwork", { kept });
    case "stopped":
      if (fatal === 4001) return t("refused4001");
      return fatal ? t("stoppedReload") : "";
    case "idle":
      return toast ? "" : t("signedOut");
    default:
      return "";
  }
}

/** What the message list says while there is no conversation to show (never a blank panel). */
export function emptyWords(c, shopName) {
  if (!c) return t("emptySignIn", { shop: shopName });
  switch (c.status) {
    case "online":
      return t("emptyOpening");
    case "stopped":
      return t("emptyStopped");
    case "offline":
      return t("emptyOffline");
    case "idle":
      return t("signedOut");
    default:
      return c.problem === "token" ? t("emptyToken") : t("emptyConnecting");
  }
}
