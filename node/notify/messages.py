"""Customer messages (SMS or e-mail text) rendered from an order by templates, one per event and channel.

A template is named `<event>.<channel>.j2`: the event is a feed event type
(`order.created`, `payment.refunded`) or a status an order or a fulfilment
enters (`order.cancelled`, `fulfilment.shipped`), the channel `sms` or
`email`. An e-mail template starts with a `Subject:` line and a blank line;
the rest is the body. The package ships a set (`node/notify/templates/`); a
node's home may hold its own in `templates/`, which take precedence over the
shipped ones of the same name.

Templates are written by whoever runs the node, and render data that came
from channels: they run in Jinja2's `SandboxedEnvironment`, which refuses
access to private attributes and to methods that change data, and with
`StrictUndefined`, so a template naming a field the order lacks fails loudly
rather than saying nothing. No HTML escaping: the output is plain text.

What a template sees: `order` (the order as `GET /v1/orders/{id}` shows it),
`fulfilment` (the one the event names, else the last that shipped, else the
last), `cancellation` (the order's last, or None), `refunded` (what the event
refunded, else all the order had refunded) and `event` (the event's data, or
empty). The filter `money(amount, currency)` shows minor units as a decimal
amount.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader, StrictUndefined, TemplateError, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

from ledger.errors import LedgerError

Channel = Literal["sms", "email"]

CHANNELS: tuple[Channel, ...] = ("sms", "email")

NAME = re.compile(r"[a-z_]+(\.[a-z_]+)+")
"""What a template's event part looks like."""

MINOR_DIGITS = {"BHD": 3, "CLP": 0, "ISK": 0, "JOD": 3, "JPY": 0, "KRW": 0, "KWD": 3, "OMR": 3, "TND": 3, "VND": 0}
"""Digits after the decimal point of the currencies that have other than 2 (ISO 4217)."""

SUBJECT = "Subject: "


class MessageError(LedgerError):
    """A message that cannot be rendered: no such template, or a template that fails on this order."""

    code = "no_message"
    http_status = 404


@dataclass(frozen=True)
class Message:
    """A rendered message."""

    subject: str | None
    """The e-mail's subject (None for an SMS)."""
    text: str


def format_money(amount: int, currency: str) -> str:
    """`amount` minor units of `currency` as a decimal amount with the currency: 1999, EUR -> `19.99 EUR`."""
    digits = MINOR_DIGITS.get(currency, 2)
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(int(amount)), 10**digits)
    return f"{sign}{major}.{minor:0{digits}d} {currency}" if digits else f"{sign}{major} {currency}"


def compute_context(order: dict[str, Any], event: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a template sees for `order` (as the API shows it) and the event's data."""
    event = event or {}
    fulfilments = order["fulfilments"]
    named = [f for f in fulfilments if f["fulfilment_id"] == event.get("fulfilment_id")]
    shipped = [f for f in fulfilments if f["status"] in ("shipped", "delivered")]
    chosen = (named or shipped or fulfilments or [None])[-1]
    refunded = event["amount"] if event.get("amount") is not None else order["payment"]["refunded"]
    return {
        "order": order,
        "fulfilment": chosen,
        "cancellation": order["cancellations"][-1] if order["cancellations"] else None,
        "refunded": refunded,
        "event": event,
    }


class MessageTemplates:
    """The templates of a node: its home's own, then the shipped ones."""

    def __init__(self, own: Path | None = None) -> None:
        loaders: list[Any] = [FileSystemLoader(own)] if own is not None and own.is_dir() else []
        loaders.append(PackageLoader("node.notify", "templates"))
        self.env = SandboxedEnvironment(
            loader=ChoiceLoader(loaders), undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
        )
        self.env.filters["money"] = format_money

    def names(self) -> list[str]:
        """Every template, as `<event>.<channel>`."""
        return sorted(name.removesuffix(".j2") for name in self.env.list_templates(extensions=["j2"]))

    def render(
        self, event: str, channel: Channel, order: dict[str, Any], data: dict[str, Any] | None = None
    ) -> Message:
        """The message of `event` for `order` on `channel`; `MessageError` if there is no such template or it
        fails on this order."""
        if not NAME.fullmatch(event) or channel not in CHANNELS:
            raise MessageError(f"no template {event!r} for channel {channel!r}")
        try:
            template = self.env.get_template(f"{event}.{channel}.j2")
            text = template.render(compute_context(order, data)).strip()
        except TemplateNotFound:
            raise MessageError(f"no template {event!r} for channel {channel!r}") from None
        except (TemplateError, TypeError, ValueError) as exc:
            raise MessageError(f"template {event}.{channel} fails on order {order['order_id']}: {exc}") from exc
        if channel == "email" and text.startswith(SUBJECT):
            subject, _, body = text.partition("\n")
            return Message(subject.removeprefix(SUBJECT).strip(), body.strip())
        return Message(None, text)
