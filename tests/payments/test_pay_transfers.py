"""Transfers: reserve, then exactly one of accept, decline or expiry."""

from __future__ import annotations

import pytest
from paysupport import DAY, PIN, buyer, funded_buyer

from payments import PaymentService, TransferState
from payments.errors import (
    AlreadyPaid,
    Forbidden,
    InsufficientBalance,
    InvalidRequest,
    NotFound,
    WrongState,
)


def send(service: PaymentService, amount: int = 300, key: str = "t1", **kw):
    return service.transfer(buyer(), conversation_id="c1", to_account="user:carol", amount=amount,
                            currency="CNY", pin=PIN, idem_key=key, **kw)


def test_transfer_reserves_then_accept_pays_recipient(service: PaymentService) -> None:
    """Money waits in pending_transfer until the recipient accepts."""
    funded_buyer(service, 1000)
    t = send(service)
    assert t.state is TransferState.PENDING and t.expires_at == t.created_at + DAY
    assert service.balance("user:bob", "CNY") == 700
    assert service.balance("platform", "CNY", "pending_transfer") == 300
    done = service.accept_transfer(buyer("carol"), transfer_id=t.transfer_id)
    assert done.state is TransferState.ACCEPTED
    assert service.balance("user:carol", "CNY") == 300
    assert service.balance("platform", "CNY", "pending_transfer") == 0


def test_decline_returns_to_sender(service: PaymentService) -> None:
    """A declined transfer goes back to the sender."""
    funded_buyer(service, 1000)
    t = send(service)
    done = service.decline_transfer(buyer("carol"), transfer_id=t.transfer_id)
    assert done.state is TransferState.DECLINED
    assert service.balance("user:bob", "CNY") == 1000
    assert service.balance("user:carol", "CNY") == 0


def test_expiry_returns_to_sender(service: PaymentService, clock) -> None:
    """After 24 h run_due returns the money, and the recipient can no longer accept."""
    funded_buyer(service, 1000)
    t = send(service)
    clock.advance(DAY - 1)
    assert service.run_due() == []
    clock.advance(1)
    changes = service.run_due()
    assert [(c.entity_id, c.state) for c in changes] == [(t.transfer_id, "EXPIRED")]
    assert service.balance("user:bob", "CNY") == 1000
    with pytest.raises(WrongState) as err:
        service.accept_transfer(buyer("carol"), transfer_id=t.transfer_id)
    assert err.value.details["state"] == "EXPIRED"


def test_only_recipient_accepts_or_declines(service: PaymentService) -> None:
    """Neither the sender nor a stranger may accept or decline."""
    funded_buyer(service, 1000)
    t = send(service)
    for intruder in (buyer("bob"), buyer("mallory")):
        with pytest.raises(Forbidden):
            service.accept_transfer(intruder, transfer_id=t.transfer_id)
        with pytest.raises(Forbidden):
            service.decline_transfer(intruder, transfer_id=t.transfer_id)
    assert service.get_transfer(t.transfer_id).state is TransferState.PENDING


def test_settled_transfer_stays_settled(service: PaymentService) -> None:
    """Accept then decline: the second is refused naming ACCEPTED."""
    funded_buyer(service, 1000)
    t = send(service)
    service.accept_transfer(buyer("carol"), transfer_id=t.transfer_id)
    with pytest.raises(WrongState) as err:
        service.decline_transfer(buyer("carol"), transfer_id=t.transfer_id)
    assert err.value.details["state"] == "ACCEPTED"
    assert service.balance("user:carol", "CNY") == 300


def test_transfer_needs_balance(service: PaymentService) -> None:
    """A transfer larger than the wallet is refused and creates nothing."""
    funded_buyer(service, 100)
    with pytest.raises(InsufficientBalance) as err:
        send(service, amount=101)
    assert err.value.code == 6010
    assert service.events_after(0) == []


def test_transfer_to_self_is_refused(service: PaymentService) -> None:
    """Sending money to yourself is a malformed request."""
    funded_buyer(service, 100)
    with pytest.raises(InvalidRequest):
        service.transfer(buyer(), conversation_id="c", to_account="user:bob", amount=1,
                         currency="CNY", pin=PIN, idem_key="k")


def test_client_transfer_id_used_once(service: PaymentService) -> None:
    """A client-chosen transfer id cannot be sent twice under another key."""
    funded_buyer(service, 1000)
    send(service, key="a", transfer_id="tr-1")
    with pytest.raises(AlreadyPaid):
        send(service, key="b", transfer_id="tr-1")
    assert service.balance("user:bob", "CNY") == 700


def test_unknown_transfer(service: PaymentService) -> None:
    """Accepting an unknown transfer is 6020."""
    with pytest.raises(NotFound):
        service.accept_transfer(buyer("carol"), transfer_id="nope")
