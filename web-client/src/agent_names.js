// Agents' display names and avatars (the hub's `agents` reply, docs/protocol.md): buyers and
// colleagues see "Lily", never `demo-agent-1`. Asked per shop once the client is online and
// a conversation with that shop is known (the hub answers a buyer only then), and again when
// a message or a list names an agent the last answer did not (once per agent and connection).
// Dispatches `agents` on the client.
import { h } from "./ui.js";
import { t } from "./i18n.js";

const RETRY_MS = 30000;
const SAFE_AVATAR = /^https:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?(\/[A-Za-z0-9._~!$&()*+,;=:@%/?#-]*)?$/;

export function agentNames(client) {
  const shops = new Map(); // shop → { agents: {id: {name, avatar}}, at, pending, again }
  const tried = new Set(); // "shop|agent" asked about once since connecting: nameless agents cost one request

  function ask(shop, minAge = RETRY_MS) {
    if (!shop || client.status !== "online") return;
    const known = shops.get(shop);
    if (known && known.pending) {
      known.again = true;
      return;
    }
    if (known && Date.now() - known.at < minAge) return;
    const entry = { agents: known ? known.agents : {}, at: Date.now(), pending: true, again: false };
    shops.set(shop, entry);
    client.request({ type: "agents", shop }).then((reply) => {
      entry.agents = reply.agents || {};
      client.dispatchEvent(new CustomEvent("agents", { detail: { shop } }));
    }).catch(() => {}).finally(() => {
      entry.pending = false;
      if (entry.again) ask(shop, 0);
    });
  }

  /** Ask again if one of `ids` is not listed yet (once per agent: one may simply have no name). */
  function want(shop, ids) {
    const entry = shops.get(shop);
    const fresh = ids.filter((id) => id && !(entry && entry.agents[id]) && !tried.has(`${shop}|${id}`));
    if (!fresh.length || !shop || client.status !== "online") return;
    for (const id of fresh) tried.add(`${shop}|${id}`);
    ask(shop, 0);
  }

  function askAll() {
    for (const conv of client.conversations.values()) if (conv.view.shop) ask(conv.view.shop);
  }

  client.addEventListener("status", () => {
    if (client.status === "online") {
      for (const entry of shops.values()) entry.at = 0; // names may have changed while away
      tried.clear();
      if (client.me && client.me.role === "agent") ask(client.me.shop);
      askAll();
    }
  });
  client.addEventListener("conversation", (ev) => {
    const shop = ev.detail && ev.detail.view && ev.detail.view.shop;
    if (shop && !shops.has(shop)) ask(shop);
  });
  client.addEventListener("message", (ev) => {
    const { conv, msg } = ev.detail;
    const b = msg.body || {};
    want(conv.view.shop, [msg.role === "agent" ? msg.sender : null, b.agent, b.by]);
  });

  const profile = (shop, id) => (shops.get(shop) || { agents: {} }).agents[id] || null;
  return {
    /** The agent's display name, or null when the shop gave none. */
    name(shop, id) {
      const p = profile(shop, id);
      return p && p.name ? p.name : null;
    },
    /** The display name, or the id where there is none (colleagues only: buyers get words). */
    label(shop, id) {
      return this.name(shop, id) || id;
    },
    /** The avatar URL if it is a plain https URL (checked here again: never render unchecked). */
    avatar(shop, id) {
      const p = profile(shop, id);
      return p && typeof p.avatar === "string" && p.avatar.length <= 512 && SAFE_AVATAR.test(p.avatar) ? p.avatar : null;
    },
    ask,
    want,
  };
}

/** A small round picture of the agent, or nothing. */
export function avatarImg(names, shop, id, size = 20) {
  const url = names && names.avatar(shop, id);
  if (!url) return null;
  return h("img.agent-avatar", { src: url, alt: "", width: size, height: size, referrerpolicy: "no-referrer", loading: "lazy" });
}

/** The widget header's "Lily is answering you", for the conversation's agent when it has a name. */
export function renderAnswering(panel, names, conv) {
  const text = panel.querySelector(".head-text");
  if (!text) return;
  let line = text.querySelector(".answering");
  if (!line) {
    line = h("div.answering", { hidden: true });
    text.append(line);
  }
  const shop = conv && conv.view.shop;
  const agent = conv && conv.view.agent;
  const name = names && agent ? names.name(shop, agent) : null;
  const key = name ? `${name}|${names.avatar(shop, agent) || ""}` : "";
  if (line.dataset.key === key) return;
  line.dataset.key = key;
  line.hidden = !name;
  line.replaceChildren(...(name ? [avatarImg(names, shop, agent, 18), h("span", t("agentAnswering", { agent: name }))].filter(Boolean) : []));
}
