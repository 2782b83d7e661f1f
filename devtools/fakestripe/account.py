"""What Stripe does: the operations of one test-mode account.

Checkout sessions are created, paid (by card, or by a method that settles
later), expired by the API or by time; payment intents and charges appear
when the customer pays; refunds draw on a charge. Every change creates the
event Stripe creates for it, handed to `deliver` when it should go out at once.

Nothing here awaits: an operation, its checks and its events happen in one
step of the event loop, so two requests can never interleave inside one (which
is also what makes the idempotency check-then-record in app.py safe).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devtools.fakestripe.checkout_params import session_params
from devtools.fakestripe.clock import Clock
from devtools.fakestripe.delivery import WebhookEndpoint
from devtools.fakestripe.errors import StripeError, invalid_param
from devtools.fakestripe.events import build_event, is_enabled
from devtools.fakestripe.objects import (
    JsonObject,
    build,
    card_details,
    new_id,
    new_session_id,
    random_string,
    sepa_debit_details,
)
from devtools.fakestripe.refund_params import RefundParams, refund_params
from devtools.fakestripe.store import SessionState, Store, snapshot

# The customer of every payment: Stripe's own test persona.
CUSTOMER_NAME = "Jenny Rosen"
DEFAULT_CUSTOMER_EMAIL = "jenny.rosen@example.com"


@dataclass(frozen=True)
class RequestContext:
    """The API request behind an operation: events name it in `request`."""

    request_id: str | None = None
    idempotency_key: str | None = None
    # Where the fake is reached, for the URLs it hands out (the payment page).
    base_url: str = ""


# Changes the customer or time makes: Stripe's events carry no request then.
AUTOMATIC = RequestContext()


class Account:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        endpoint: WebhookEndpoint,
        deliver: Callable[[JsonObject], None],
        api_version: str,
    ) -> None:
        self.store = store
        self.clock = clock
        self.endpoint = endpoint
        self._deliver = deliver
        self.api_version = api_version

    # --- checkout sessions --------------------------------------------------

    def create_session(self, params: dict[str, Any], ctx: RequestContext) -> JsonObject:
        now = self.clock.now()
        p = session_params(params, now)
        session_id = new_session_id()
        session = build(
            "checkout.session",
            id=session_id,
            allow_promotion_codes=p.allow_promotion_codes,
            amount_subtotal=p.amount_total,
            amount_total=p.amount_total,
            billing_address_collection=p.billing_address_collection,
            cancel_url=p.cancel_url,
            client_reference_id=p.client_reference_id,
            created=now,
            currency=p.currency,
            customer_email=p.customer_email,
            expires_at=p.expires_at,
            locale=p.locale,
            metadata=p.metadata,
            payment_method_types=list(p.payment_method_types or ("card",)),
            payment_status="unpaid",
            status="open",
            submit_type=p.submit_type,
            success_url=p.success_url,
            url=f"{ctx.base_url}/pay/{session_id}",
        )
        self.store.sessions[session_id] = session
        self.store.session_state[session_id] = SessionState(
            payment_intent_data=p.payment_intent_data, base_url=ctx.base_url
        )
        return session

    def session(self, session_id: str) -> JsonObject:
        session = self.store.session(session_id)
        self._lapse_if_due(session)
        return session

    def expire_session(
        self, session_id: str, ctx: RequestContext, *, deliver: bool = True
    ) -> tuple[JsonObject, JsonObject]:
        """`POST /v1/checkout/sessions/{id}/expire`: the session and its event."""
        session = self.session(session_id)
        if session["status"] != "open":
            raise StripeError(
                'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout'
                f" Session has a status of {session['status']!r}.",
                param="session",
            )
        return session, self._expire(session, ctx, deliver=deliver)

    def expire_lapsed(self) -> list[JsonObject]:
        """Expires every open session past its `expires_at`, as Stripe does
        shortly after; returns their `checkout.session.expired` events."""
        return [
            event
            for session in list(self.store.sessions.values())
            if (event := self._lapse_if_due(session)) is not None
        ]

    def _lapse_if_due(self, session: JsonObject) -> JsonObject | None:
        if session["status"] == "open" and self.clock.now() >= session["expires_at"]:
            return self._expire(session, AUTOMATIC, deliver=True)
        return None

    def _expire(self, session: JsonObject, ctx: RequestContext, *, deliver: bool) -> JsonObject:
        session.update(status="expired", url=None)
        return self._event("checkout.session.expired", session, ctx, deliver=deliver)

    def pay(
        self, session_id: str, *, async_payment: bool = False, deliver: bool = True
    ) -> JsonObject:
        """The customer pays on the hosted page: by card (paid at once), or
        with `async_payment` by SEPA Direct Debit, which completes the session
        unpaid until `finish_async_payment`. Returns checkout.session.completed."""
        session = self.session(session_id)
        if session["status"] != "open":
            raise StripeError(
                f"Checkout Session {session_id} is {session['status']}: the customer can no"
                " longer pay.",
                param="session",
            )
        state = self.store.session_state[session_id]
        email = session["customer_email"] or DEFAULT_CUSTOMER_EMAIL
        intent, charge = _payment(session, state, self.clock.now(), email, async_payment)
        self.store.payment_intents[intent["id"]] = intent
        self.store.charges[charge["id"]] = charge
        session.update(
            status="complete",
            payment_status="unpaid" if async_payment else "paid",
            payment_intent=intent["id"],
            url=None,
            customer_details=_customer_details(email),
        )
        if async_payment:
            self._event("charge.pending", charge, AUTOMATIC)
            self._event("payment_intent.processing", intent, AUTOMATIC)
        else:
            self._event("charge.succeeded", charge, AUTOMATIC)
            self._event("payment_intent.succeeded", intent, AUTOMATIC)
        return self._event("checkout.session.completed", session, AUTOMATIC, deliver=deliver)

    def finish_async_payment(
        self, session_id: str, *, succeeded: bool, deliver: bool = True
    ) -> JsonObject:
        """The bank settles a payment `pay(async_payment=True)` started.
        Returns checkout.session.async_payment_succeeded (or _failed)."""
        session = self.store.session(session_id)
        intent_id = session["payment_intent"]
        intent = self.store.payment_intents.get(intent_id) if intent_id else None
        if intent is None or intent["status"] != "processing":
            raise StripeError(
                f"Checkout Session {session_id} has no payment in progress to settle.",
                param="session",
            )
        charge = self.store.charges[intent["latest_charge"]]
        if succeeded:
            intent.update(status="succeeded", amount_received=intent["amount"])
            charge.update(status="succeeded", paid=True)
            session.update(payment_status="paid")
            self._event("charge.succeeded", charge, AUTOMATIC)
            self._event("payment_intent.succeeded", intent, AUTOMATIC)
            event_type = "checkout.session.async_payment_succeeded"
        else:
            failure = {
                "code": "insufficient_funds",
                "message": "The customer's account has insufficient funds to cover this payment.",
                "type": "card_error",
            }
            intent.update(
                status="requires_payment_method",
                last_payment_error={**failure, "payment_method": {"id": intent["payment_method"]}},
            )
            charge.update(
                status="failed",
                paid=False,
                failure_code=failure["code"],
                failure_message=failure["message"],
            )
            self._event("charge.failed", charge, AUTOMATIC)
            self._event("payment_intent.payment_failed", intent, AUTOMATIC)
            event_type = "checkout.session.async_payment_failed"
        return self._event(event_type, session, AUTOMATIC, deliver=deliver)

    # --- refunds ------------------------------------------------------------

    def create_refund(self, params: dict[str, Any], ctx: RequestContext) -> JsonObject:
        p = refund_params(params)
        charge = self._refund_target(p)
        remaining = int(charge["amount"]) - int(charge["amount_refunded"])
        if remaining <= 0:
            raise StripeError(
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
                param="payment_intent" if p.payment_intent else "charge",
            )
        amount = remaining if p.amount is None else p.amount
        if amount > remaining:
            currency = str(charge["currency"]).upper()
            raise StripeError(
                f"Refund amount ({amount} {currency}) is greater than unrefunded amount on"
                f" charge ({remaining} {currency})",
                param="amount",
            )
        refund_id = new_id("re")
        method_type = charge["payment_method_details"]["type"]
        refund = build(
            "refund",
            id=refund_id,
            amount=amount,
            balance_transaction=new_id("txn"),
            charge=charge["id"],
            created=self.clock.now(),
            currency=charge["currency"],
            destination_details={"type": method_type, method_type: {"type": "refund"}},
            metadata=p.metadata,
            payment_intent=charge["payment_intent"],
            payment_method=charge["payment_method"],
            reason=p.reason,
            status="succeeded",
        )
        self.store.refunds[refund_id] = refund
        previous: JsonObject = {"amount_refunded": charge["amount_refunded"]}
        charge["amount_refunded"] = int(charge["amount_refunded"]) + amount
        if charge["amount_refunded"] == charge["amount"]:
            previous["refunded"] = False
            charge["refunded"] = True
        refunds = charge["refunds"]
        refunds["data"].insert(0, snapshot(refund))
        refunds["total_count"] = len(refunds["data"])
        self._event("refund.created", refund, ctx)
        self._event("charge.refunded", charge, ctx, previous_attributes=previous)
        return refund

    def _refund_target(self, p: RefundParams) -> JsonObject:
        """The charge a refund draws on, named directly or by its payment intent."""
        if p.charge is not None:
            charge = self.store.charge(p.charge, param="charge", status=400)
            if p.payment_intent is not None and charge["payment_intent"] != p.payment_intent:
                raise invalid_param(
                    f"Charge {p.charge} does not belong to PaymentIntent {p.payment_intent}.",
                    "charge",
                )
            if charge["status"] != "succeeded":
                raise StripeError(
                    f"Charge {p.charge} has not succeeded and cannot be refunded.",
                    param="charge",
                )
            return charge
        assert p.payment_intent is not None
        intent = self.store.payment_intent(p.payment_intent, param="payment_intent", status=400)
        charge_id = intent["latest_charge"]
        latest = self.store.charges.get(charge_id) if charge_id else None
        if latest is None or latest["status"] != "succeeded":
            raise StripeError(
                f"This PaymentIntent ({p.payment_intent}) does not have a successful charge to"
                " refund.",
                param="payment_intent",
            )
        return latest

    # --- events -------------------------------------------------------------

    def _event(
        self,
        event_type: str,
        obj: JsonObject,
        ctx: RequestContext,
        *,
        deliver: bool = True,
        previous_attributes: JsonObject | None = None,
    ) -> JsonObject:
        """Records the event; sends it if the endpoint listens for its type,
        unless `deliver` is False (the test will send it itself)."""
        listened = self.endpoint.url is not None and is_enabled(
            event_type, self.endpoint.enabled_events
        )
        event = build_event(
            event_type,
            obj,
            created=self.clock.now(),
            api_version=self.api_version,
            request_id=ctx.request_id,
            idempotency_key=ctx.idempotency_key,
            previous_attributes=previous_attributes,
            pending_webhooks=1 if listened else 0,
        )
        self.store.events[event["id"]] = event
        if listened and deliver:
            self._deliver(event)
        return event


def _payment(
    session: JsonObject, state: SessionState, now: int, email: str, async_payment: bool
) -> tuple[JsonObject, JsonObject]:
    """The PaymentIntent and the Charge a checkout's payment creates, with
    what the session's payment_intent_data asks them to carry."""
    data = state.payment_intent_data
    amount = int(session["amount_total"])
    intent_id, charge_id = new_id("pi"), new_id("ch")
    shared = {
        "amount": amount,
        "created": now,
        "currency": session["currency"],
        "description": data.get("description"),
        "metadata": dict(data["metadata"]),
        "payment_method": new_id("pm"),
        "receipt_email": data.get("receipt_email"),
        "statement_descriptor": data.get("statement_descriptor"),
        "statement_descriptor_suffix": data.get("statement_descriptor_suffix"),
        "transfer_group": data.get("transfer_group"),
    }
    intent = build(
        "payment_intent",
        **shared,
        id=intent_id,
        amount_received=0 if async_payment else amount,
        client_secret=f"{intent_id}_secret_{random_string(25)}",
        latest_charge=charge_id,
        payment_method_types=["sepa_debit" if async_payment else "card"],
        status="processing" if async_payment else "succeeded",
    )
    billing = build("charge")["billing_details"]
    billing.update(email=email, name=CUSTOMER_NAME)
    charge = build(
        "charge",
        **shared,
        id=charge_id,
        amount_captured=amount,
        balance_transaction=new_id("txn"),
        billing_details=billing,
        captured=True,
        paid=not async_payment,
        payment_intent=intent_id,
        payment_method_details=sepa_debit_details() if async_payment else card_details(amount),
        receipt_url=f"{state.base_url}/receipts/{charge_id}",
        refunds=_no_refunds(charge_id),
        status="pending" if async_payment else "succeeded",
    )
    return intent, charge


def _no_refunds(charge_id: str) -> JsonObject:
    return {
        "data": [],
        "has_more": False,
        "object": "list",
        "total_count": 0,
        "url": f"/v1/charges/{charge_id}/refunds",
    }


def _customer_details(email: str) -> JsonObject:
    return {
        "address": build("charge")["billing_details"]["address"],
        "business_name": None,
        "email": email,
        "individual_name": None,
        "name": CUSTOMER_NAME,
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }
