// The shop's presence in the widget. The hub pushes it only to a buyer who has a conversation
// with the shop (once it is open). Until then, and while not signed in, the public endpoint is
// polled: every PRESENCE_POLL_MS with jitter, only while the page is visible, and with
// If-None-Match so an unchanged status costs a 304 where the hub sends an ETag.

const PRESENCE_POLL_MS = 20000;

/**
 * `state` is the widget's state (its `client`, and where the polled status is kept), `render`
 * redraws. Returns `shopPresence()` (the status to show), `poll()` (ask now, unless the hub
 * pushes it) and `start()` (poll now and keep polling).
 */
export function shopPresenceUi({ hub, shop, state, render }) {
  let etag = null;
  let timer = null;

  function live() {
    const c = state.client;
    return c && c.status === "online" ? c.presence.get("s:" + shop) || null : null;
  }

  async function fetchNow() {
    try {
      const headers = etag ? { "If-None-Match": etag } : {};
      const res = await fetch(`${hub}/presence/shop/${encodeURIComponent(shop)}`, { cache: "no-store", headers });
      if (res.ok) {
        etag = res.headers.get("ETag");
        state.publicPresence = await res.json();
        state.typical = state.publicPresence.typical_response_ms || null; // "usually replies in …"
      }
    } catch {
      /* offline: keep the last state */
    }
    render();
  }

  function schedule() {
    clearTimeout(timer);
    const delay = PRESENCE_POLL_MS * (0.8 + Math.random() * 0.4);
    timer = setTimeout(async () => {
      if (!document.hidden && !live()) await fetchNow();
      schedule();
    }, delay);
  }

  /** The shop's status: live from the hub, else the public one; "unknown" while we are cut off. */
  function shopPresence() {
    const c = state.client;
    if (c && ["reconnecting", "offline", "stopped"].includes(c.status)) return { status: "unknown", last_seen: null };
    return live() || state.publicPresence || { status: "offline", last_seen: null };
  }

  return {
    shopPresence,
    poll: () => (live() ? undefined : fetchNow()),
    start: () => { fetchNow(); schedule(); },
  };
}
