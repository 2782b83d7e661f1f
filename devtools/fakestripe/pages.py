"""The hosted payment page a session's `url` points at, for people trying the
stack by hand (`make up`): "Pay" completes the session as a card payment
would and redirects to `success_url`, as Stripe Checkout does. Tests use the
control methods instead (server.py, controls.py)."""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from devtools.fakestripe.account import Account
from devtools.fakestripe.errors import StripeError
from devtools.fakestripe.objects import JsonObject

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:32rem;margin:3rem auto}}
button{{font-size:1rem;padding:.5rem 1rem;margin-right:.5rem}}</style></head>
<body><p><small>holdfast fake Stripe (test mode)</small></p><h1>{title}</h1>{body}</body></html>
"""


def page_routes(account: Account) -> list[BaseRoute]:
    async def pay_page(request: Request) -> Response:
        session_id = request.path_params["session_id"]
        try:
            session = account.session(session_id)
        except StripeError as error:
            return _page("Not found", f"<p>{escape(error.message)}</p>", 404)
        if request.method == "POST":
            return await _submit(request, account, session)
        if session["status"] != "open":
            return _page("Checkout", f"<p>This checkout is {escape(session['status'])}.</p>")
        cancel = session["cancel_url"]
        body = (
            f"<p>{_amount(session)}</p>"
            '<form method="post">'
            '<button name="action" value="pay">Pay by card</button>'
            '<button name="action" value="pay_async">Pay by SEPA debit (settles later)</button>'
            "</form>" + (f'<p><a href="{escape(cancel)}">Cancel</a></p>' if cancel else "")
        )
        return _page("Checkout", body)

    async def receipt(request: Request) -> Response:
        charge = account.store.charges.get(request.path_params["charge_id"])
        if charge is None:
            return _page("Not found", "<p>No such receipt.</p>", 404)
        body = (
            f"<p>{charge['amount']} {escape(str(charge['currency']).upper())} (minor units),"
            f" {escape(charge['status'])}; refunded {charge['amount_refunded']}.</p>"
        )
        return _page("Receipt", body)

    return [
        Route("/pay/{session_id}", pay_page, methods=["GET", "POST"]),
        Route("/receipts/{charge_id}", receipt, methods=["GET"]),
    ]


async def _submit(request: Request, account: Account, session: JsonObject) -> Response:
    # Parsed by hand: Starlette's request.form() needs python-multipart.
    action = dict(parse_qsl((await request.body()).decode("utf-8", "replace"))).get("action")
    try:
        account.pay(session["id"], async_payment=action == "pay_async")
    except StripeError as error:
        return _page("Checkout", f"<p>{escape(error.message)}</p>", 400)
    success = session["success_url"]
    if not success:
        return _page("Paid", "<p>Thank you.</p>")
    # Stripe fills in this template variable when it redirects.
    return RedirectResponse(success.replace("{CHECKOUT_SESSION_ID}", session["id"]), 303)


def _amount(session: JsonObject) -> str:
    currency = escape(str(session["currency"]).upper())
    return f"Total: {session['amount_total']} {currency} (minor units)"


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=escape(title), body=body), status)
