"""The field types and the base model every protocol frame shares.

One place, so that the frame modules (:mod:`.frames`, :mod:`.money_frames`,
:mod:`.safety_frames`) cannot drift apart on what an id or a key is.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@-]+$")]
"""Identifiers of users, shops, listings and conversations: short, printable."""

RequestId = Annotated[int, Field(ge=0, le=2**53)]
Seq = Annotated[int, Field(ge=0, le=2**53)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=r"^(https?://|/)\S+$")]

Amount = Annotated[int, Field(ge=1, le=10**13)]
"""Minor units (fen, cents); never a float."""
Key = Annotated[str, StringConstraints(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_.:@-]+$")]
Pin = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class Frame(BaseModel):
    """Unknown keys are refused and nothing is coerced: a frame is exactly what the doc says."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
