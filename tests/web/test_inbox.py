"""The back office's buyer notes and tags (issue 10) shared by two agents, with a colleague's
save arriving live and a stale save refused rather than lost; closing a conversation out of
the inbox, its coming back when the buyer writes, and reopening it by hand."""

from __future__ import annotations

from playwright.async_api import expect

from chat.server import ChatServer

from .conftest import PageFactory, shot
from .credit_seed import axe_in
from .test_backoffice import open_office
from .test_browser import buyer_asks, open_widget


async def test_two_agents_share_notes_and_tags_and_close_and_reopen_a_conversation(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    _, buyer = await new_page()
    widget = await open_widget(buyer, base_url)
    await buyer_asks(buyer, widget, "Do you ship to Chengdu?")
    await expect(widget.locator(".row.mine:not(.pending) .bubble", has_text="Chengdu")).to_be_visible()
    one = await open_office(new_page, base_url, "demo-agent-1", "&inboxPollMs=500")
    two = await open_office(new_page, base_url, "demo-agent-2", "&inboxPollMs=500")
    for page in (one, two):
        await page.locator("button.conv[data-buyer='demo-buyer-1']").click()

    # agent 1 writes a note and tags; agent 2 sees them at once, with who wrote them
    notes1, notes2 = one.locator("form.buyer-notes"), two.locator("form.buyer-notes")
    await notes1.locator("textarea[name=note]").fill("Prefers SF Express")
    await notes1.locator("input[name=tags]").fill("VIP，回头客, VIP")
    await notes1.locator("button[type=submit]").click()
    await expect(notes1.locator(".buyer-tags .tag")).to_have_text(["VIP", "回头客"])
    await expect(notes2.locator("textarea[name=note]")).to_have_value("Prefers SF Express")
    await expect(notes2.locator(".notes-meta")).to_contain_text("Last edited by demo-agent-1")
    await expect(notes2.locator(".buyer-tags .tag")).to_have_text(["VIP", "回头客"])

    # agent 2 is typing when agent 1 saves again: the draft stays, a line says so
    await notes2.locator("textarea[name=note]").fill("Prefers SF Express; wants this year's tea")
    await notes1.locator("textarea[name=note]").fill("Prefers SF Express. Pays fast.")
    await notes1.locator("button[type=submit]").click()
    await expect(notes2.locator(".notes-notice")).to_contain_text("demo-agent-1 saved newer notes")
    await expect(notes2.locator("textarea[name=note]")).to_have_value("Prefers SF Express; wants this year's tea")
    # saving it is refused once (it would overwrite unseen words), then replaces them on purpose
    await notes2.locator("button[type=submit]").click()
    await expect(notes2.locator(".notes-notice")).to_contain_text("Not saved: demo-agent-1 changed them meanwhile")
    await expect(notes2.locator(".notes-notice")).to_contain_text("Pays fast.")
    await notes2.locator("button[type=submit]").click()
    await expect(notes1.locator("textarea[name=note]")).to_have_value("Prefers SF Express; wants this year's tea")
    await expect(notes1.locator(".notes-meta")).to_contain_text("Last edited by demo-agent-2")
    assert await axe_in(two, ".buyer-panel") == [] and await axe_in(two, ".chat-head") == []
    await shot(two, "15-backoffice-buyer-notes")
    stored = await hub.hub.store.buyer_profile("demo-shop", "demo-buyer-1")
    assert stored is not None and stored.version == 3 and stored.updated_by == "demo-agent-2"

    # agent 1 closes it: it leaves both inboxes; the buyer sees nothing change
    rows_before = await widget.locator(".messages > *").count()
    await one.locator(".chat-head [data-action=conv-close]").click()
    for page in (one, two):
        await expect(page.locator("button.conv[data-buyer='demo-buyer-1']")).to_have_count(0)
        await expect(page.locator(".closed-toggle")).to_have_text("Closed (1)")
    await expect(one.locator(".chat-head [data-action=conv-reopen]")).to_be_visible()
    await buyer.wait_for_timeout(300)
    assert await widget.locator(".messages > *").count() == rows_before

    # the buyer writes: it is back in both inboxes by itself
    await widget.locator("textarea").fill("And to Lhasa?")
    await widget.locator("textarea").press("Enter")
    for page in (one, two):
        await expect(page.locator("button.conv[data-buyer='demo-buyer-1']")).to_have_count(1)

    # agent 2 closes it again, finds it under "Closed" and reopens it
    await two.locator(".chat-head [data-action=conv-close]").click()
    await expect(one.locator("button.conv[data-buyer='demo-buyer-1']")).to_have_count(0)
    await two.locator(".closed-toggle").click()
    await expect(two.locator(".closed-toggle")).to_have_text("Back to active")
    await two.locator("button.conv[data-buyer='demo-buyer-1']").click()
    await two.locator(".chat-head [data-action=conv-reopen]").click()
    await expect(two.locator("button.conv[data-buyer='demo-buyer-1']")).to_have_count(0)  # it is active now
    await two.locator(".closed-toggle").click()
    for page in (one, two):
        await expect(page.locator("button.conv[data-buyer='demo-buyer-1']")).to_have_count(1)
    await expect(one.locator(".closed-toggle")).to_be_hidden()
