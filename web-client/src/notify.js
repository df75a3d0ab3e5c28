// New-message alerts for a buyer who is not looking: a short chime from the widget and a desktop
// notification shown by the embed script on the listing page.
//
// The desktop notification belongs to the page, not to the iframe: browsers refuse the
// permission prompt to cross-origin frames, and the buyer knows the marketplace, not the hub.
// The prompt is only ever asked right after a gesture of the buyer (sending a message: the
// moment a reply becomes worth waiting for); the frame's user activation reaches the page, so
// the page may ask then. The chime plays through Web Audio, unlocked by the buyer's first
// click or key in the widget (browsers keep audio silent until then).
import { countsAsUnread } from "./protocol.js";

/**
 * Whether `msg`, just arrived live, should alert the buyer: a message from the other side that
 * counts as unread, while the panel is closed or the tab is hidden.
 */
export function shouldAlert(msg, { mine, panelOpen, hidden }) {
  if (!msg || mine || msg.sender === "system" || !countsAsUnread(msg)) return false;
  return !panelOpen || hidden;
}

/** The notification's body: the message's preview, cut to a line's length. */
export function alertBody(text, max = 120) {
  const line = String(text || "").replace(/\s+/g, " ").trim();
  return line.length > max ? line.slice(0, max - 1) + "…" : line;
}

/** A two-note chime (no audio file to fetch); silent until the widget saw a gesture. */
export class Chime {
  constructor(win = globalThis) {
    this.win = win;
    this.ctx = null;
    this.played = 0;
  }

  /** Call from a click or key handler: creates or resumes the audio context while allowed. */
  unlock() {
    const Ctx = this.win.AudioContext || this.win.webkitAudioContext;
    if (!Ctx) return;
    try {
      if (!this.ctx) this.ctx = new Ctx();
      if (this.ctx.state === "suspended") this.ctx.resume();
    } catch {
      this.ctx = null;
    }
  }

  play() {
    const ctx = this.ctx;
    if (!ctx || ctx.state !== "running") return false;
    const now = ctx.currentTime;
    [880, 1320].forEach((freq, i) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + i * 0.12);
      gain.gain.exponentialRampToValueAtTime(0.15, now + i * 0.12 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.12 + 0.25);
      osc.connect(gain).connect(ctx.destination);
      osc.start(now + i * 0.12);
      osc.stop(now + i * 0.12 + 0.3);
    });
    this.played += 1;
    return true;
  }
}
