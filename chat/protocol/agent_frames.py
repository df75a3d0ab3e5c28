"""Frames that tell clients how a shop's agents are shown (protocol v1), registered in
:mod:`.frames`' unions: display names and avatars instead of raw agent ids."""

from __future__ import annotations

from typing import Literal

from .fields import Frame as _Frame
from .fields import Id, RequestId

# --- client → server ---------------------------------------------------------


class AgentsRequest(_Frame):
    """The display names and avatars of a shop's agents. A buyer may ask only about a shop it
    has a conversation with, an agent only about its own shop."""

    type: Literal["agents"]
    id: RequestId | None = None
    shop: Id


# --- server → client ---------------------------------------------------------


class AgentProfileView(_Frame):
    name: str | None
    """The agent's display name (at most 64 characters, one line); null: show the id."""
    avatar: str | None
    """An ``https://`` picture URL of at most 512 characters; null: none."""


class AgentsView(_Frame):
    """Reply to ``agents``: the shop's agents that have a name or an avatar, by agent id."""

    type: Literal["agents"] = "agents"
    re: int | None = None
    shop: str
    agents: dict[str, AgentProfileView]
