"""Small-amount payments without PIN (小额免密), opt-in per buyer.

A buyer switches quick pay on for one currency with two caps - per payment and per
rolling window (``daily_window_ms``, like the daily limit) - each at most the platform's
maximum (``PaymentSettings.quick_pay_caps``), and proves it with the current PIN; switching
it off needs no PIN (it only makes payments safer). ``pay`` without a PIN is then accepted
when the order's total fits under both caps; the window counts only PIN-less payments (as
Alipay's daily 免密 limit does), recorded in ``quick_payments`` in the payment's own
transaction. Everything else - the ledger's own limits, the balance - still applies, and
a locked PIN (someone guessing) stops quick pay too. Transfers always need the PIN.

Concurrent quick payments of one buyer serialise on their ``quick_pay`` row (``FOR
UPDATE`` on PostgreSQL; SQLite has one writer), so two of them cannot both fit under a
cap that has room for one. Lock order inside ``pay``: order row, ``quick_pay`` row,
accounts, event sequence - the order the other commands use, with one row between.
"""

from __future__ import annotations

from dataclasses import dataclass

from payments.clock import Clock
from payments.errors import InvalidAmount, InvalidRequest, PinRequired
from payments.ledger import check_id
from payments.models import Actor, Order
from payments.money import check_amount, check_currency, format_amount
from payments.pin import PinGuard, check_pin_format
from payments.repository import Repo
from payments.settings import PaymentSettings, SpendLimits
from payments.store import Sql, Store


@dataclass(frozen=True)
class QuickPayCaps:
    """A buyer's quick pay in one currency (minor units): the caps in force - their own,
    lowered to the platform's if the platform lowered its maximum since - and what the
    current window still allows."""

    per_payment: int
    daily: int
    remaining: int


class QuickPay:
    """Switching quick pay on and off, reading it, and authorising a PIN-less payment."""

    def __init__(self, store: Store, clock: Clock, settings: PaymentSettings,
                 pins: PinGuard) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.pins = pins

    def configure(
        self, actor: Actor, *, enabled: bool, currency: str | None = None,
        per_payment: int | None = None, daily: int | None = None, pin: str | None = None,
    ) -> dict[str, QuickPayCaps]:
        """Switch quick pay on (for ``currency``, with caps and the current PIN) or off (for
        ``currency``, or every currency without one). Returns the state after."""
        check_id(actor.user_id, "user id")
        if actor.role != "buyer":
            raise InvalidRequest("Only buyers can pay without PIN.", field="role")
        if not isinstance(enabled, bool):
            raise InvalidRequest("enabled must be true or false.", field="enabled")
        if currency is not None:
            check_currency(currency)
        principal = actor.principal
        if not enabled:
            self.store.write(lambda sql: _delete(sql, principal, currency))
            return self.state(actor)
        if currency is None:
            raise InvalidRequest("Name the currency to pay without PIN in.", field="currency")
        platform = self.settings.quick_pay_caps.get(currency)
        if platform is None:
            raise InvalidRequest(f"Payments without PIN are not offered in {currency}.",
                                 field="currency")
        check_amount(per_payment, field="per-payment cap")
        check_amount(daily, field="daily cap")
        if per_payment is None or daily is None:  # checked above; kept for the type checker
            raise InvalidAmount(field="per_payment")
        _within(per_payment, platform.per_transaction, currency, "per_payment")
        _within(daily, platform.daily, currency, "daily")
        if per_payment > daily:
            raise InvalidAmount("The per-payment cap cannot exceed the daily cap.",
                                field="per_payment")
        if pin is None:
            raise PinRequired("Enter your payment PIN to pay small amounts without it.",
                              reason="enable")
        verified = self.pins.verify(principal, check_pin_format(pin))

        def txn(sql: Sql) -> None:
            repo = Repo(sql)
            now = self.clock()
            self.pins.recheck(repo, principal, verified, now)
            sql.run(
                "INSERT INTO quick_pay (principal, currency, per_payment, daily, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (principal, currency) DO UPDATE SET "
                "per_payment = excluded.per_payment, daily = excluded.daily, "
                "updated_at = excluded.updated_at",
                (principal, currency, per_payment, daily, now))

        self.store.write(txn)
        return self.state(actor)

    def state(self, actor: Actor) -> dict[str, QuickPayCaps]:
        """Currency → caps in force, for each currency the actor switched quick pay on in."""
        principal = actor.principal

        def read(sql: Sql) -> dict[str, QuickPayCaps]:
            rows = sql.rows("SELECT currency, per_payment, daily FROM quick_pay "
                            "WHERE principal = ? ORDER BY currency", (principal,))
            now = self.clock()
            out = {}
            for currency, per_payment, daily in rows:
                caps = self._caps(currency, per_payment, daily)
                if caps is None:
                    continue
                spent = self._spent(sql, principal, currency, now)
                out[currency] = QuickPayCaps(caps.per_transaction, caps.daily,
                                             max(0, caps.daily - spent))
            return out

        return self.store.read(read)

    def authorize(self, repo: Repo, actor: Actor, order: Order, now: int) -> None:
        """Inside ``pay``'s transaction: may this order be paid without PIN? Records the
        payment against the window if so; raises :class:`PinRequired` if not."""
        principal, currency, amount = actor.principal, order.currency, order.amount
        self.pins.check_unlocked(repo, principal, now)
        lock = " FOR UPDATE" if repo.sql.dialect == "postgresql" else ""
        rows = repo.sql.rows("SELECT per_payment, daily FROM quick_pay "
                             "WHERE principal = ? AND currency = ?" + lock, (principal, currency))
        caps = self._caps(currency, *rows[0]) if rows else None
        if caps is None:
            raise PinRequired(reason="off")
        if amount > caps.per_transaction:
            raise PinRequired(
                f"Payments over {format_amount(caps.per_transaction, currency)} "
                "need your payment PIN.", reason="per_payment", limit=caps.per_transaction)
        spent = self._spent(repo.sql, principal, currency, now)
        if spent + amount > caps.daily:
            raise PinRequired(
                "This payment is over today's limit for payments without PIN; "
                "enter your payment PIN.", reason="daily", remaining=max(0, caps.daily - spent))
        repo.sql.run("INSERT INTO quick_payments (order_id, principal, currency, amount, "
                     "created_at) VALUES (?, ?, ?, ?, ?)",
                     (order.order_id, principal, currency, amount, now))

    def prune(self, now: int, limit: int = 1000) -> int:
        """Forget up to ``limit`` PIN-less payments too old to count in any window again; a
        second window of margin keeps a clock set back a little from counting less."""
        before = now - 2 * self.settings.daily_window_ms

        def txn(sql: Sql) -> int:
            ids = [r[0] for r in sql.rows(
                "SELECT order_id FROM quick_payments WHERE created_at < ? LIMIT ?", (before, limit))]
            return sum(sql.run("DELETE FROM quick_payments WHERE order_id = ?", (i,)) for i in ids)

        return self.store.write(txn)

    def _caps(self, currency: str, per_payment: int, daily: int) -> SpendLimits | None:
        platform = self.settings.quick_pay_caps.get(currency)
        if platform is None:
            return None
        return SpendLimits(per_transaction=min(per_payment, platform.per_transaction),
                           daily=min(daily, platform.daily))

    def _spent(self, sql: Sql, principal: str, currency: str, now: int) -> int:
        since = now - self.settings.daily_window_ms + 1
        rows = sql.rows("SELECT COALESCE(SUM(amount), 0) FROM quick_payments "
                        "WHERE principal = ? AND currency = ? AND created_at >= ?",
                        (principal, currency, since))
        return int(rows[0][0])


def _within(value: int, cap: int, currency: str, field: str) -> None:
    if value > cap:
        raise InvalidAmount(f"The most allowed is {format_amount(cap, currency)}.",
                            field=field, max=cap)


def _delete(sql: Sql, principal: str, currency: str | None) -> None:
    if currency is None:
        sql.run("DELETE FROM quick_pay WHERE principal = ?", (principal,))
    else:
        sql.run("DELETE FROM quick_pay WHERE principal = ? AND currency = ?",
                (principal, currency))
