"""The back office (issue 10, item 6): waits right after a reload, a colleague's new chats in the
live inbox, the offer form on a narrow screen, hand-over notes in words, auto-replies marked as
such, quick replies that keep the draft and can be brought back."""

from __future__ import annotations

from playwright.async_api import Page, expect

from chat.server import ChatServer

from .conftest import PageFactory
from .test_browser import buyer_asks, open_widget


async def open_office(new_page: PageFactory, base_url: str, agent: str, query: str = "", **options: object) -> Page:
    _, page = await new_page(**options)
    await page.goto(f"{base_url}/demo/backoffice?agent={agent}&lang=en{query}")
    await expect(page.locator(".conn[data-status=online]")).to_be_visible()
    return page


async def test_reload_waits_narrow_screen_and_quick_replies(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    _, buyer = await new_page()
    widget = await open_widget(buyer, base_url)
    await buyer.locator("#ask").click()
    for text in ("first question", "second question", "third question"):
        await widget.locator("textarea").fill(text)
        await widget.locator("textarea").press("Enter")
        await buyer.wait_for_timeout(30)  # each its own millisecond
    await expect(widget.locator(".row.mine:not(.pending) .bubble", has_text="question")).to_have_count(3)
    convs = await hub.hub.store.conversations_of_buyer("demo-buyer-1")
    stored = await hub.hub.store.messages(convs[0].id, after=0, limit=50)
    first = next(m for m in stored if m.kind == "text")

    # a back office opened now (as after a reload) measures the wait from the first unanswered question
    agent = await open_office(new_page, base_url, "demo-agent-1", viewport={"width": 900, "height": 700})
    wait = agent.locator("button.conv[data-buyer='demo-buyer-1'] .wait")
    await expect(wait).to_have_attribute("data-since", str(first.ts))

    # at 900 px the offer form is still there, on screen, and works
    await agent.locator("button.conv[data-buyer='demo-buyer-1']").click()
    offer = agent.locator("form.offer")
    await expect(offer.locator("button[type=submit]")).to_be_in_viewport()
    await offer.locator("input[name=price]").fill("100")
    await offer.locator("button[type=submit]").click()
    await expect(widget.locator(".card[data-state=OFFERED] .card-amount")).to_have_text("¥100.00")

    # a quick reply goes into the draft, at the caret, without wiping it
    draft = agent.locator(".composer textarea")
    await draft.fill("Hello!")
    await agent.locator(".quick .chip-text").first.click()
    await expect(draft).to_have_value("Hello! Hello! How can I help you?")  # the English starting set
    # removing one can be undone, in its place
    chips = agent.locator(".quick .chip-text")
    before = await chips.all_inner_texts()
    await agent.locator(".quick .chip-x").nth(1).click()
    await expect(chips).to_have_count(len(before) - 1)
    await agent.locator(".quick [data-action=quick-undo]").click()
    await expect(chips).to_have_count(len(before))
    assert await chips.all_inner_texts() == before


async def test_colleagues_chats_reach_the_inbox_hand_over_in_words_auto_reply_marked(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    agent2 = await open_office(new_page, base_url, "demo-agent-2")
    agent1 = await open_office(new_page, base_url, "demo-agent-1", "&inboxPollMs=1000")
    await agent1.locator("#away").check()  # new chats now go to demo-agent-2, who is online
    _, buyer = await new_page()
    widget = await open_widget(buyer, base_url)
    await buyer_asks(buyer, widget, "anyone there?")
    theirs = agent2.locator("button.conv[data-buyer='demo-buyer-1']")
    await expect(theirs).to_contain_text("→ Wang (demo agent)")  # by display name, not id
    # demo-agent-1 is not sent this chat live, and still sees it come in without a reload
    mine = agent1.locator("button.conv[data-buyer='demo-buyer-1']")
    await expect(mine).to_contain_text("anyone there?", timeout=6000)
    await expect(mine.locator(".wait")).to_be_visible()

    # demo-agent-2 hands it over: the buyer is told by name, without the shop's internal ids
    await theirs.click()
    await agent2.locator(".chat-head select").select_option("demo-agent-1")
    note = widget.locator(".messages .note").last
    await expect(note).to_have_text("小林 Lin (demo agent) of the shop's team is now answering you.")
    await expect(widget.locator(".messages")).not_to_contain_text("demo-agent")
    await expect(agent2.locator(".messages .note").last).to_contain_text(
        "Wang (demo agent) handed this conversation over to 小林 Lin (demo agent)")

    # demo-agent-1 is away: the hub's away message is marked as automatic on both sides
    await widget.locator("textarea").fill("hello again")
    await widget.locator("textarea").press("Enter")
    auto = widget.locator(".row.theirs", has_text="we are away")
    await expect(auto.locator(".auto-tag")).to_have_text("Automatic reply")
    await mine.click()
    await expect(agent1.locator(".messages .row", has_text="we are away").locator(".auto-tag")).to_be_visible()
