// The back office on a phone (≤ 480 px, backoffice.css): the inbox and the open conversation are
// two screens. Choosing a conversation shows it; the back button returns to the inbox, with focus
// on the conversation just left so a keyboard or screen-reader user keeps their place.
import { h } from "./ui.js";
import { t } from "./i18n.js";

export class PhoneScreens {
  constructor({ main, inboxList }) {
    this.main = main;
    this.inboxList = inboxList;
    this.back = h("button.icon-btn.back-btn", { type: "button", "aria-label": t("backToInbox"), title: t("backToInbox") },
      h("span", { "aria-hidden": "true" }, "←"));
    this.back.addEventListener("click", () => this.showInbox());
  }

  showChat() {
    this.main.classList.add("show-chat");
  }

  showInbox() {
    this.main.classList.remove("show-chat");
    const conv = this.main.querySelector("button.conv[aria-current=true]");
    if (conv) conv.focus();
  }
}
