"""Every frame of wire protocol v1 as a pydantic model.

A frame is a msgpack map with a ``type`` key. Client requests may carry an
integer ``id``; the reply to a request carries it back as ``re`` so a client
can match replies to requests without waiting for each one.

The models are the single source of truth: the protocol document
(``docs/protocol.md``) is checked against them by a test, and the server's own
output is validated against :data:`ServerFrame` in the end-to-end tests.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from .agent_frames import AgentProfileView as AgentProfileView
from .agent_frames import AgentsRequest as AgentsRequest
from .agent_frames import AgentsView as AgentsView
from .arbiter_frames import DisputesPage, DisputesRequest, EvidencePackage, EvidenceRequest, ReportsPage, ReportsRequest
from .backoffice_frames import (
    BuyerProfileView,
    CloseConversation,
    ConversationState,
    ConversationStates,
    ConversationStatesView,
    CreditRequest,
    CreditView,
    EditBuyerProfile,
    GetBuyerProfile,
    ReopenConversation,
)
from .fields import Amount as Amount
from .fields import Frame as _Frame
from .fields import Id as Id
from .fields import Key as Key
from .fields import Pin as Pin
from .fields import Reason as Reason
from .fields import RequestId as RequestId
from .fields import Seq as Seq
from .fields import Url as Url
from .money_frames import AnswerAfterSale as AnswerAfterSale
from .money_frames import AnswerRefund as AnswerRefund
from .money_frames import AnswerTransfer as AnswerTransfer
from .money_frames import ClaimAfterSale as ClaimAfterSale
from .money_frames import Decide as Decide
from .money_frames import Dispute as Dispute
from .money_frames import Offer as Offer
from .money_frames import OrderAction as OrderAction
from .money_frames import Pay as Pay
from .money_frames import Rate as Rate
from .money_frames import RequestRefund as RequestRefund
from .money_frames import SendTransfer as SendTransfer
from .money_frames import SetPin as SetPin
from .money_frames import SetQuickPay as SetQuickPay
from .money_frames import Ship as Ship
from .money_frames import Wallet as Wallet
from .safety_frames import Block, Report, Reported, Unblock
from .search_frames import Search, SearchHitView, SearchResults


class Listing(_Frame):
    """Product card snapshot taken when a conversation is opened."""

    id: Id
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    price: Annotated[int, Field(ge=0, le=10**13)]
    """Price in minor units of ``currency`` (cents, fen); never a float."""
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    image: Url | None = None
    verified: bool = False
    """Set by the hub, never by a client: the card came signed by the marketplace
    (``listing_token``), so its price can be paid without an offer."""
    signed_at: int | None = None
    """Set by the hub, never by a client: when the marketplace signed the card (the token's
    ``iat``, epoch ms). The newest signed card wins; an older one never replaces it."""


# Follow frames need Listing, so they are imported once it exists.
from .follow_frames import (  # noqa: E402
    BroadcastResult,
    Broadcasts,
    BroadcastsPage,
    ClaimOffer,
    Follow,
    FollowersPage,
    Following,
    FollowState,
    SendBroadcast,
    Unfollow,
)
from .follow_frames import Followers as FollowersRequest  # noqa: E402

# --- message bodies a client may send ---------------------------------------


class TextBody(_Frame):
    kind: Literal["text"]
    text: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    auto: bool = False
    """An automatic reply (an away message): shown like any text, left out of response figures."""


class ImageBody(_Frame):
    kind: Literal["image"]
    url: Url
    width: Annotated[int, Field(ge=1, le=20000)] | None = None
    height: Annotated[int, Field(ge=1, le=20000)] | None = None


class ProductBody(_Frame):
    kind: Literal["product"]
    listing: Listing


ClientBody = Annotated[TextBody | ImageBody | ProductBody, Field(discriminator="kind")]


# --- client → server ---------------------------------------------------------


class Auth(_Frame):
    """First frame of a browser connection: the token the marketplace signed."""

    type: Literal["auth"]
    id: RequestId | None = None
    token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class Open(_Frame):
    """Open (or get back) the buyer's conversation with a shop about a listing."""

    type: Literal["open"]
    id: RequestId | None = None
    shop: Id
    listing: Listing
    listing_token: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = None
    """The marketplace's signature of this listing (see the README); without it the
    card is shown as sent, but only an offer from the shop can be paid."""


class Send(_Frame):
    """Post a message; ``cmid`` makes a resend idempotent."""

    type: Literal["send"]
    id: RequestId | None = None
    conv: Id
    cmid: Id
    body: ClientBody


class Sync(_Frame):
    """Catch up after (re)connecting: cursors are the last seq seen per conversation."""

    type: Literal["sync"]
    id: RequestId | None = None
    cursors: dict[Id, Seq] = Field(default_factory=dict, max_length=10000)
    inbox: Annotated[str, StringConstraints(max_length=64)] | None = None


class History(_Frame):
    """Page through a conversation, oldest first within a page.

    With neither ``before`` nor ``after``: the latest ``limit`` messages. With
    ``before``: the ``limit`` messages just below it (scrolling up). With
    ``after``: the ``limit`` messages just above it (catching up)."""

    type: Literal["history"]
    id: RequestId | None = None
    conv: Id
    before: Seq | None = None
    after: Seq | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class ListConversations(_Frame):
    """Page through your conversations, most recently active first (after a sync's first page)."""

    type: Literal["conversations"]
    id: RequestId | None = None
    before_ts: Annotated[int, Field(ge=0, le=2**62)] | None = None
    """With ``before_id``: the ``updated_at`` and ``id`` of the last conversation you have."""
    before_id: Id | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class Read(_Frame):
    """Mark everything up to ``seq`` as read."""

    type: Literal["read"]
    id: RequestId | None = None
    conv: Id
    seq: Seq


class Typing(_Frame):
    """Typing indicator; relayed to the counterpart, never stored."""

    type: Literal["typing"]
    id: RequestId | None = None
    conv: Id
    active: bool = True


class Recall(_Frame):
    """Withdraw one of your own messages within the recall window."""

    type: Literal["recall"]
    id: RequestId | None = None
    conv: Id
    seq: Seq


class SetPresence(_Frame):
    """Set this device's status; a user is online if any device is."""

    type: Literal["presence"]
    id: RequestId | None = None
    status: Literal["online", "away"]


class Assign(_Frame):
    """Hand a conversation over to another agent of the same shop."""

    type: Literal["assign"]
    id: RequestId | None = None
    conv: Id
    agent: Id


class AutoReply(_Frame):
    """Shop agent: the reply the hub sends for you while you are away or offline."""

    type: Literal["auto_reply"]
    id: RequestId | None = None
    active: bool
    text: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    """Required the first time it is switched on; kept when it is switched off, so it
    can be switched on again without it."""


class Stats(_Frame):
    """Shop agents: the shop's response figures over a recent window (auto-replies excluded)."""

    type: Literal["stats"]
    id: RequestId | None = None
    days: Annotated[int, Field(ge=1, le=90)] = 7


class Ping(_Frame):
    """Application-level round trip (the websocket layer pings on its own)."""

    type: Literal["ping"]
    id: RequestId | None = None


ClientFrame = Annotated[
    Auth | Open | Send | Sync | History | ListConversations | Read | Typing | Recall | SetPresence | Assign
    | AutoReply | Stats | Ping | Offer | Pay | Ship | OrderAction | RequestRefund | AnswerRefund | Dispute | Decide
    | SendTransfer | AnswerTransfer | Rate | SetPin | SetQuickPay | Wallet
    | Report | Block | Unblock
    | CreditRequest | GetBuyerProfile | EditBuyerProfile | CloseConversation | ReopenConversation | ConversationStates
    | Follow | Unfollow | FollowState | FollowersRequest | SendBroadcast | Broadcasts | ClaimOffer
    | Search | AgentsRequest | ReportsRequest | DisputesRequest | EvidenceRequest | ClaimAfterSale | AnswerAfterSale,
    Field(discriminator="type"),
]

MONEY_FRAME_TYPES: tuple[type[_Frame], ...] = (
    Offer, Pay, Ship, OrderAction, RequestRefund, AnswerRefund, Dispute, Decide, SendTransfer, AnswerTransfer,
    Rate, SetPin, SetQuickPay, Wallet, CreditRequest, ClaimOffer, ClaimAfterSale, AnswerAfterSale,
)
"""The money commands: handled only where payments are enabled (else 5002)."""

CLIENT_FRAME_TYPES: tuple[type[BaseModel], ...] = (
    Auth, Open, Send, Sync, History, ListConversations, Read, Typing, Recall, SetPresence, Assign, AutoReply,
    Stats, Ping, Offer, Pay, Ship, OrderAction, RequestRefund, AnswerRefund, Dispute, Decide,
    SendTransfer, AnswerTransfer, Rate, SetPin, SetQuickPay, Wallet,
    Report, Block, Unblock,
    CreditRequest, GetBuyerProfile, EditBuyerProfile, CloseConversation, ReopenConversation, ConversationStates,
    Follow, Unfollow, FollowState, FollowersRequest, SendBroadcast, Broadcasts, ClaimOffer,
    Search, AgentsRequest, ReportsRequest, DisputesRequest, EvidenceRequest, ClaimAfterSale, AnswerAfterSale,
)


# --- server → client ---------------------------------------------------------


class MessageView(_Frame):
    """A stored message as clients see it (also the ``msg`` push frame)."""

    type: Literal["msg"] = "msg"
    conv: str
    seq: int
    sender: str
    """User id of the sender, or ``system``."""
    role: Literal["buyer", "agent", "arbiter", "system"]
    kind: Literal["text", "image", "product", "system", "recall", "card", "card_update", "broadcast"]
    body: dict[str, Any]
    ts: int
    """Server time of the message, epoch milliseconds."""
    cmid: str | None = None
    recalled: bool = False


class ConversationView(_Frame):
    id: str
    buyer: str
    shop: str
    listing: Listing
    agent: str | None
    """The agent the conversation is assigned to (delivered to live)."""
    last_seq: int
    unread: int
    """Messages from the other side after this user's read mark."""
    read: dict[str, int]
    """Read-up-to seq per participant (``buyer`` and ``shop``)."""
    created_at: int
    updated_at: int
    """Time of the last message, epoch ms (conversation lists sort by it, newest first)."""
    last_message: MessageView | None = None


class Welcome(_Frame):
    type: Literal["welcome"] = "welcome"
    re: int | None = None
    user: str
    role: Literal["buyer", "agent", "arbiter"]
    shop: str | None
    node: str
    server_time: int
    recall_window_ms: int
    max_frame_bytes: int
    rate_per_second: float
    rate_burst: int


class Ack(_Frame):
    """Reply to ``send``: the message is durable under this seq."""

    type: Literal["ack"] = "ack"
    re: int | None = None
    conv: str
    cmid: str
    seq: int
    ts: int
    duplicate: bool = False
    """True when ``cmid`` had already been stored: nothing new was posted."""


class Opened(_Frame):
    type: Literal["opened"] = "opened"
    re: int | None = None
    conversation: ConversationView
    created: bool


class Synced(_Frame):
    """Ends a sync: every missed message was pushed before this frame."""

    type: Literal["synced"] = "synced"
    re: int | None = None
    conversations: list[ConversationView]
    """When ``full``: the most recently active conversations (all of them unless ``more``);
    else only those that changed since ``inbox``."""
    full: bool
    more: bool
    """More (older) conversations exist: page them with ``conversations``."""
    inbox: str | None
    """Opaque cursor to send with the next ``sync``."""
    total_unread: int | None
    """Unread messages over all conversations (only on a full sync)."""


SearchHitView.model_rebuild(_types_namespace={"ConversationView": ConversationView})
SearchResults.model_rebuild()


class ConversationsPage(_Frame):
    type: Literal["conversations"] = "conversations"
    re: int | None = None
    conversations: list[ConversationView]
    more: bool


class HistoryPage(_Frame):
    type: Literal["history"] = "history"
    re: int | None = None
    conv: str
    messages: list[MessageView]
    more: bool


class Ok(_Frame):
    type: Literal["ok"] = "ok"
    re: int | None = None


class StatsView(_Frame):
    """The shop's responsiveness: of the conversations where a buyer wrote in the window,
    how many an agent answered (not counting auto-replies), and how fast the first answer came."""

    type: Literal["stats"] = "stats"
    re: int | None = None
    shop: str
    since: int
    """Start of the window, epoch ms."""
    asked: int
    answered: int
    response_rate: float | None
    first_response_p50_ms: int | None
    first_response_p90_ms: int | None


class Pong(_Frame):
    type: Literal["pong"] = "pong"
    re: int | None = None
    ts: int


class Receipt(_Frame):
    """Someone's read mark moved; also keeps a user's own devices' unread counts in step."""

    type: Literal["receipt"] = "receipt"
    conv: str
    user: str
    side: Literal["buyer", "shop"]
    seq: int
    unread: int | None = None
    """The recipient's own unread count in ``conv`` when the mark is theirs."""


class TypingEvent(_Frame):
    type: Literal["typing"] = "typing"
    conv: str
    user: str
    active: bool


class PresenceEvent(_Frame):
    """Presence of a user (``u:<id>``) or a shop (``s:<id>``) changed."""

    type: Literal["presence"] = "presence"
    entity: str
    status: Literal["online", "away", "offline"]
    last_seen: int | None


class PaymentResult(_Frame):
    """Reply to a money command: the order or transfer as it stands after it.

    The same change reaches both sides (and every device) as a ``card`` or
    ``card_update`` message in the conversation.
    """

    type: Literal["payment"] = "payment"
    re: int | None = None
    entity: Literal["order", "transfer", "rating"]
    view: dict[str, Any]


class WalletView(_Frame):
    type: Literal["wallet"] = "wallet"
    re: int | None = None
    balances: dict[str, dict[str, int]]
    """Owner (``user:<id>`` or ``shop:<id>``) → currency → available minor units."""
    pin_set: bool
    quick_pay: dict[str, dict[str, int]] = Field(default_factory=dict)
    """Currency → ``per_payment``, ``daily`` and ``remaining`` of payments without PIN (switched-on only)."""


class Error(_Frame):
    type: Literal["error"] = "error"
    re: int | None = None
    code: int
    message: str
    details: Any = None


ServerFrame = Annotated[
    MessageView | Welcome | Ack | Opened | Synced | ConversationsPage | HistoryPage | Ok | StatsView | Pong | Receipt
    | TypingEvent | PresenceEvent | PaymentResult | WalletView | Error
    | Reported
    | CreditView | BuyerProfileView | ConversationStatesView | ConversationState
    | Following | FollowersPage | BroadcastResult | BroadcastsPage
    | SearchResults | AgentsView | ReportsPage | DisputesPage | EvidencePackage,
    Field(discriminator="type"),
]

SERVER_FRAME_TYPES: tuple[type[BaseModel], ...] = (
    MessageView, Welcome, Ack, Opened, Synced, ConversationsPage, HistoryPage, Ok, StatsView, Pong, Receipt,
    TypingEvent, PresenceEvent, PaymentResult, WalletView, Error,
    Reported,
    CreditView, BuyerProfileView, ConversationStatesView, ConversationState,
    Following, FollowersPage, BroadcastResult, BroadcastsPage,
    SearchResults, AgentsView, ReportsPage, DisputesPage, EvidencePackage,
)
