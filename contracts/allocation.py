"""Allocation and splitting (sourcing): which locations fulfil which order lines.

For a click-and-collect order the pickup store serves first, as much as it has.
What is left is sourced from the whole network's available stock at the
locations that ship online orders: a location that can serve everything left
wins (fewest shipments); otherwise the one that covers the most units, greedily,
until everything is covered or the configured maximum of fulfilments is
reached. Ties go to the better location priority (lower first), then the
shorter distance to the delivery point, then the larger available stock, then
the location id. Distance is an equirectangular approximation in integer
micro-degrees with a cosine table, so every node gets the same number.
Locations at their daily capacity, or that declined this order, are skipped;
a fulfilment declined or cancelled gives its capacity back.
The candidates are the locations that hold allocatable stock of a SKU the
order needs (the inventory's allocatable index), so locations without it,
however many, cost an allocation nothing. Candidates are looked at by
priority, then distance: once one can serve everything left, the locations
after it cannot rank better and their stock is not read, and the distances
of a priority not reached are not computed.

Each chosen location gets one fulfilment (sub-order, `<order>-<n>`) with its
stock reserved. Lines nothing can serve are backordered, or the order is
refused with `insufficient_stock`, per `allocation.unservable`. Virtual SKUs
need no stock and form one fulfilment of their own. A location that cannot
serve its fulfilment declines it and its lines are allocated again elsewhere.
Allocation never takes a location's safety stock of a SKU (`stock.safety`).

Backorders are sourced again by the ledger when stock arrives: every movement
that makes more of a SKU available marks it (`inventory.mark_restocked`), and
`begin_block` runs a re-sourcing pass over the orders waiting for a marked
SKU, oldest order first, at most `allocation.resource_batch` orders per block,
each in a savepoint of its own; a pass that does not finish in one block goes
on in the next, and SKUs marked meanwhile wait for the next pass. A pass
visits at most `allocation.resource_scan` entries of the index per block and
keeps its cursor (the last order visited) in state, resuming after it, so a
block's pass costs a bounded number of steps however long the index is and
every entry is visited in the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contracts import keys
from contracts.catalogue import MICRO_DEGREES, VIRTUAL_LOCATION, get_location, require_location_access
from contracts.context import BlockContext, Context, TxContext
from contracts.errors import Rejected
from contracts.fulfilment import settle_order
from contracts.inventory import (
    compute_allocatable,
    get_allocatable,
    get_stock,
    release_stock,
    reserve_stock,
)
from contracts.lifecycle import (
    DAY_MS,
    ENDED_FULFILMENT,
    OPEN_FULFILMENT,
    count_capacity,
    end_fulfilment,
    get_order,
    put_fulfilment,
    put_order,
    require_fulfilment,
    require_order,
    require_order_access,
    set_fulfilment_status,
    transition_order,
)
from contracts.numbering import compute_fulfilment_id
from contracts.payload import choice, ident, integer, payload, read_payload, text
from contracts.records import Fulfilment, FulfilmentStatus, Item, Location, Order
from contracts.roles import roles_for
from contracts.settings import Setting
from ledger.state import StateView
from ledger.tx import Tx

ROLES = roles_for("fulfilment.decline", "order.allocate")

SETTINGS = (
    Setting(
        integer("allocation.max_splits", 1, 10, default=3, doc="most physical fulfilments per order"), governed=True
    ),
    Setting(
        choice(
            "allocation.unservable",
            ("refuse", "backorder"),
            default="refuse",
            doc="an order the network's stock cannot serve is refused, or waits for stock",
        )
    ),
    Setting(
        integer("allocation.resource_batch", 1, 50, default=20, doc="most backordered orders sourced again per block"),
        governed=True,
    ),
    Setting(
        integer(
            "allocation.resource_scan",
            10,
            100_000,
            default=1_000,
            doc="most entries of the backorder index a re-sourcing pass visits per block",
        ),
        governed=True,
    ),
)
"""The configuration keys of this module (`contracts.settings`)."""

PAYLOADS = {
    "fulfilment.decline": payload(ident("fulfilment_id"), text("reason", default="")),
    "order.allocate": payload(ident("order_id")),
}
"""The payload of each tx kind of this module."""

COSINE_BY_DEGREE = (
    10000, 9998, 9994, 9986, 9976, 9962, 9945, 9925, 9903, 9877, 9848, 9816, 9781, 9744, 9703, 9659,
    9613, 9563, 9511, 9455, 9397, 9336, 9272, 9205, 9135, 9063, 8988, 8910, 8829, 8746, 8660, 8572,
    8480, 8387, 8290, 8192, 8090, 7986, 7880, 7771, 7660, 7547, 7431, 7314, 7193, 7071, 6947, 6820,
    6691, 6561, 6428, 6293, 6157, 6018, 5878, 5736, 5592, 5446, 5299, 5150, 5000, 4848, 4695, 4540,
    4384, 4226, 4067, 3907, 3746, 3584, 3420, 3256, 3090, 2924, 2756, 2588, 2419, 2250, 2079, 1908,
    1736, 1564, 1392, 1219, 1045, 872, 698, 523, 349, 175, 0,
)  # fmt: skip
"""cos(d degrees) * 10000 for d = 0..90, rounded."""


def compute_distance_sq(lat1: int, lon1: int, lat2: int, lon2: int) -> int:
    """Squared equirectangular distance in micro-degrees of latitude."""
    mid_degree = min(abs(lat1 + lat2) // (2 * MICRO_DEGREES), 90)
    dlon = abs(lon1 - lon2)
    if dlon > 180 * MICRO_DEGREES:
        dlon = 360 * MICRO_DEGREES - dlon
    dx = dlon * COSINE_BY_DEGREE[mid_degree] // 10000
    dy = lat1 - lat2
    return dx * dx + dy * dy


def get_destination(state: StateView, order: Order) -> tuple[int, int] | None:
    """Coordinates goods travel to: the delivery point, or the pickup store."""
    delivery = order["delivery"]
    if delivery is not None and delivery["lat"] is not None and delivery["lon"] is not None:
        return delivery["lat"], delivery["lon"]
    if order["pickup"] is not None:
        store = get_location(state, order["pickup"])
        if store is not None:
            return int(store["lat"]), int(store["lon"])
    return None


def is_at_capacity(state: StateView, ctx: Context, location: Location) -> bool:
    limit = int(location["daily_capacity"])
    if limit <= 0:
        return False
    return int(state.get(keys.capacity_key(location["location"], ctx.time_ms // DAY_MS)) or 0) >= limit


def get_available(
    state: StateView, known: dict[str, dict[str, int]], holders: dict[str, set[str]], location: str
) -> dict[str, int]:
    """Allocatable stock at `location` of each SKU of `holders` (SKU -> the locations the allocatable index lists
    for it), read once per plan and only for the locations the plan looks at: a SKU the index does not list
    there has none, and its stock record is not read. `known` keeps what was read; stock does not change while
    an allocation is planned, only once its fulfilments are created."""
    available = known.get(location)
    if available is None:
        available = {
            sku: compute_allocatable(get_stock(state, location, sku)) if location in held else 0
            for sku, held in holders.items()
        }
        known[location] = available
    return available


def rank_next_priority(
    ranked: list[tuple[int, int, str, Location]],
    pending: list[Location],
    destination: tuple[int, int] | None,
    distances: dict[str, int],
) -> None:
    """Move the candidates of the best priority left in `pending` (which is in priority order) to the end of
    `ranked`, by distance then id: `ranked` stays in (priority, distance, id) order, and the distances of a
    priority no plan reaches are never computed."""
    priority = pending[0]["priority"]
    group: list[tuple[int, int, str, Location]] = []
    while pending and pending[0]["priority"] == priority:
        loc = pending.pop(0)
        distance = 0 if destination is None else compute_distance_sq(*destination, loc["lat"], loc["lon"])
        distances[loc["location"]] = distance
        group.append((priority, distance, loc["location"], loc))
    group.sort()
    ranked.extend(group)


def compute_cover(available: dict[str, int], needs: list[Item]) -> list[Item]:
    """What a location with `available` stock (by SKU) can serve of `needs`."""
    left = dict(available)
    cover: list[Item] = []
    for need in needs:
        sku = need["sku"]
        qty = min(need["qty"], left[sku])
        if qty > 0:
            left[sku] -= qty
            cover.append({"line": need["line"], "sku": sku, "qty": qty})
    return cover


def subtract_items(needs: list[Item], served: list[Item]) -> list[Item]:
    """`needs` minus `served`, line by line, dropping what is fully served."""
    out: list[Item] = []
    for need in needs:
        qty = need["qty"] - sum(s["qty"] for s in served if s["line"] == need["line"])
        if qty > 0:
            out.append({"line": need["line"], "sku": need["sku"], "qty": qty})
    return out


def plan_allocation(
    state: StateView, ctx: Context, order: Order, needs: list[Item], slots: int
) -> tuple[list[tuple[Location, list[Item]]], list[Item]]:
    """Choose up to `slots` locations for `needs`; return the plan and what stays unserved."""
    excluded = order["declined_at"]
    skus = [need["sku"] for need in needs]
    holders = {sku: set(locations) for sku, locations in get_allocatable(state, skus).items()}
    known: dict[str, dict[str, int]] = {}
    plan: list[tuple[Location, list[Item]]] = []
    if order["pickup"] is not None and order["pickup"] not in excluded and slots > 0:
        store = get_location(state, order["pickup"])
        if store is not None and store["active"] and not is_at_capacity(state, ctx, store):
            cover = compute_cover(get_available(state, known, holders, store["location"]), needs)
            if cover:
                plan.append((store, cover))
                needs = subtract_items(needs, cover)
    destination = get_destination(state, order)
    chosen = [loc["location"] for loc, _ in plan]
    pending: list[Location] = []
    for location in sorted(set().union(*holders.values())):
        loc = get_location(state, location)
        if loc is None or not (loc["active"] and loc["ships_online"]) or location in excluded or location in chosen:
            continue
        pending.append(loc)
    pending.sort(key=lambda loc: loc["priority"])
    distances: dict[str, int] = {}
    candidates: list[tuple[int, int, str, Location]] = []
    while needs and len(plan) < slots:
        wanted = sum(n["qty"] for n in needs)
        best: tuple[Any, ...] | None = None
        index = 0
        while index < len(candidates) or pending:
            if index == len(candidates):
                if best is not None and best[0][0] == 0:
                    break
                rank_next_priority(candidates, pending, destination, distances)
            candidate = candidates[index]
            index += 1
            if best is not None and best[0][0] == 0 and candidate[:2] > best[0][2:4]:
                break
            loc = candidate[3]
            if is_at_capacity(state, ctx, loc):
                continue
            available = get_available(state, known, holders, loc["location"])
            cover = compute_cover(available, needs)
            covered = sum(c["qty"] for c in cover)
            if covered == 0:
                continue
            stock = sum(available[n["sku"]] for n in needs)
            rank = (
                0 if covered == wanted else 1,
                -covered,
                loc["priority"],
                distances[loc["location"]],
                -stock,
                loc["location"],
            )
            if best is None or rank < best[0]:
                best = (rank, candidate, cover)
        if best is None:
            break
        _, candidate, cover = best
        plan.append((candidate[3], cover))
        candidates.remove(candidate)
        needs = subtract_items(needs, cover)
    return plan, needs


def create_fulfilment(
    state: StateView, ctx: Context, order: Order, location: str, org: str, items: list[Item]
) -> Fulfilment:
    """Open a fulfilment at `location`, reserving its stock (virtual goods reserve nothing)."""
    order["fulfilment_count"] += 1
    fulfilment_id = compute_fulfilment_id(order["order_id"], order["fulfilment_count"])
    is_virtual = location == VIRTUAL_LOCATION
    if not is_virtual:
        for item in items:
            reserve_stock(state, ctx, location, item["sku"], item["qty"], fulfilment_id)
        count_capacity(state, location, ctx.time_ms, 1)
    status: FulfilmentStatus = "released" if order["released"] else "allocated"
    record: Fulfilment = {
        "fulfilment_id": fulfilment_id,
        "order_id": order["order_id"],
        "location": location,
        "org": org,
        "virtual": is_virtual,
        "lines": [{"line": item["line"], "sku": item["sku"], "qty": item["qty"]} for item in items],
        "status": status,
        "events": [],
        "carrier": "",
        "tracking": "",
        "invoice": None,
        "returned": [],
    }
    set_fulfilment_status(record, status, ctx)
    put_fulfilment(state, record)
    order["fulfilments"].append(fulfilment_id)
    return record


def count_physical_fulfilments(state: StateView, order: Order) -> int:
    count = 0
    for fid in order["fulfilments"]:
        record = require_fulfilment(state, fid)
        if not record["virtual"] and record["status"] not in ENDED_FULFILMENT:
            count += 1
    return count


def allocate_items(state: StateView, ctx: Context, order: Order, needs: Sequence[Item]) -> list[Item]:
    """Create fulfilments for `needs`; return the items nothing could serve."""
    virtual = [n for n in needs if order["lines"][n["line"]]["virtual"]]
    physical = [n for n in needs if not order["lines"][n["line"]]["virtual"]]
    if virtual:
        create_fulfilment(state, ctx, order, VIRTUAL_LOCATION, order["org"], virtual)
    slots = int(ctx.config["allocation.max_splits"]) - count_physical_fulfilments(state, order)
    plan, unserved = plan_allocation(state, ctx, order, physical, slots)
    for location, items in plan:
        create_fulfilment(state, ctx, order, location["location"], location["org"], items)
    return unserved


def allocate_new_order(state: StateView, ctx: TxContext, order: Order) -> None:
    """Allocate a new or just approved order (what of it is not cancelled), then settle it: released at once if
    paid; refuse it or backorder what is left, per config."""
    needs: list[Item] = [
        {"line": i, "sku": line["sku"], "qty": line["qty"] - line["cancelled"]}
        for i, line in enumerate(order["lines"])
        if line["qty"] > line["cancelled"]
    ]
    unserved = allocate_items(state, ctx, order, needs)
    if unserved and ctx.config["allocation.unservable"] != "backorder":
        missing = ", ".join(f"{u['qty']} x {u['sku']}" for u in unserved)
        raise Rejected("insufficient_stock", f"not enough stock in the network for {missing}")
    order["backorder"] = unserved
    transition_order(order, "backordered" if unserved else "allocated", ctx)
    settle_order(state, ctx, order)


def merge_backorder(backorder: list[Item], more: list[Item]) -> list[Item]:
    merged: list[Item] = [{"line": item["line"], "sku": item["sku"], "qty": item["qty"]} for item in backorder]
    for item in more:
        for existing in merged:
            if existing["line"] == item["line"]:
                existing["qty"] += item["qty"]
                break
        else:
            merged.append({"line": item["line"], "sku": item["sku"], "qty": item["qty"]})
    return sorted(merged, key=lambda i: i["line"])


def resource_order(state: StateView, ctx: Context, order: Order) -> None:
    """Source an order's backordered lines again and settle it (the order is put)."""
    order["backorder"] = allocate_items(state, ctx, order, order["backorder"])
    settle_order(state, ctx, order)
    put_order(state, order)


def begin_block(state: StateView, ctx: BlockContext) -> None:
    """Go on with the re-sourcing pass under way, or start one for the SKUs restocked since the last."""
    current = state.get(keys.RESTOCK_PASS_KEY)
    if current is None:
        restocked = state.get(keys.RESTOCKED_KEY)
        if restocked is None:
            return
        state.delete(keys.RESTOCKED_KEY)
        current = {"skus": restocked, "after": ""}
    batch = int(ctx.config["allocation.resource_batch"])
    limit = int(ctx.config["allocation.resource_scan"])
    tried = visited = 0
    after = keys.backorder_key(current["after"]) if current["after"] else None
    for key, order_id in state.scan(keys.BACKORDER_PREFIX, after):
        if tried == batch or visited == limit:
            state.put(keys.RESTOCK_PASS_KEY, current)
            return
        visited += 1
        current["after"] = key.removeprefix(keys.BACKORDER_PREFIX)
        order = get_order(state, order_id)
        if order is None or not any(item["sku"] in current["skus"] for item in order["backorder"]):
            continue
        tried += 1
        state.begin()
        try:
            resource_order(state, ctx, order)
        except Rejected:
            state.rollback()
            continue
        state.commit()
    state.delete(keys.RESTOCK_PASS_KEY)


def process_order_allocate(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """Try again to source an order's backordered lines (e.g. after new stock arrived)."""
    fields = read_payload(PAYLOADS["order.allocate"], tx.payload)
    order = require_order(state, fields["order_id"])
    require_order_access(ctx, order)
    if order["status"] != "backordered" or not order["backorder"]:
        raise Rejected("invalid_transition", f"order {order['order_id']} has nothing backordered")
    before = len(order["fulfilments"])
    resource_order(state, ctx, order)
    return {
        "order_id": order["order_id"],
        "status": order["status"],
        "fulfilments": order["fulfilments"][before:],
        "backorder": order["backorder"],
    }


def process_fulfilment_decline(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """A location cannot serve its fulfilment: release its stock and source the lines elsewhere."""
    fields = read_payload(PAYLOADS["fulfilment.decline"], tx.payload)
    record = require_fulfilment(state, fields["fulfilment_id"])
    location = get_location(state, record["location"])
    if record["virtual"] or location is None:
        raise Rejected("invalid_transition", "virtual fulfilments cannot be declined")
    require_location_access(ctx, location)
    if record["status"] not in OPEN_FULFILMENT:
        raise Rejected("invalid_transition", f"fulfilment {record['fulfilment_id']} is {record['status']}")
    reason = fields["reason"]
    for item in record["lines"]:
        release_stock(state, ctx, record["location"], item["sku"], item["qty"], record["fulfilment_id"])
    end_fulfilment(state, ctx, record, "declined")
    record["decline_reason"] = reason
    put_fulfilment(state, record)
    order = require_order(state, record["order_id"])
    if record["location"] not in order["declined_at"]:
        order["declined_at"].append(record["location"])
    before = len(order["fulfilments"])
    unserved = allocate_items(state, ctx, order, record["lines"])
    order["backorder"] = merge_backorder(order["backorder"], unserved)
    settle_order(state, ctx, order)
    put_order(state, order)
    return {
        "fulfilment_id": record["fulfilment_id"],
        "order_id": order["order_id"],
        "status": order["status"],
        "reallocated_to": order["fulfilments"][before:],
        "backorder": order["backorder"],
    }
