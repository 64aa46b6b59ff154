"""FetchXML as the Web API runs it (`GET <entityset>?fetchXml=<urlencoded>`): what the product's views and charts use.

Supported: `<entity>` with `<attribute>`, `<all-attributes/>`, `<order attribute|alias descending>`, nested
`<filter type="and|or">` with conditions (eq, ne, gt, ge, lt, le, in, not-in, null, not-null, like, not-like,
this-month, last-month, today, last-x-hours, last-x-days, on-or-after, on-or-before), `<link-entity name from to
alias link-type="inner|outer">` with its own attributes and filters, `top`/`count`, and aggregates
(`aggregate="true"`: count, countcolumn, sum, avg, min, max; `groupby` with `dategrouping="day|week|month|quarter|year"`).
Anything else is a 400 naming what is not supported, never a silently different result.

Semantics follow Microsoft Learn "Aggregate data using FetchXml" (the fixture tests/fixtures/dataverse/
fetchxml_aggregate.json): nulls are left out of aggregates (count counts rows), a date part is returned as a whole
number (day of month, week of year, month, quarter, year), rows are returned as `alias` -> value; plain queries return
columns by name, lookups as `_x_value`, link-entity columns as `<alias>.<column>`. Relative date operators use the
stand-in's clock (UTC).
"""
from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Mapping

from core.footprint import Column, Table
from standins.dataverse.store import bad_request, parse_datetime

Row = dict[str, Any]
AGGREGATES = {"count", "countcolumn", "sum", "avg", "min", "max"}
DATE_GROUPINGS = {"day", "week", "month", "quarter", "year"}
_CODE = "0x80041103"        # QueryBuilderNoAttribute and friends: the platform's FetchXML errors


def _error(message: str):
    return bad_request(f"FetchXML: {message}", _CODE)


@dataclass
class Attribute:
    table: Table
    column: Column
    alias: str | None = None
    aggregate: str | None = None
    groupby: bool = False
    dategrouping: str | None = None
    prefix: str = ""                       # "<link alias>." for link-entity columns


@dataclass
class Link:
    table: Table
    from_column: Column                    # on the linked table
    to_column: Column                      # on the parent
    alias: str
    outer: bool
    attributes: list[Attribute] = field(default_factory=list)
    filters: list[Callable[[Row, dt.datetime], bool]] = field(default_factory=list)
    links: list["Link"] = field(default_factory=list)


@dataclass
class Query:
    table: Table
    aggregate: bool
    attributes: list[Attribute]
    filters: list[Callable[[Row, dt.datetime], bool]]
    orders: list[tuple[str, bool, bool]]   # (name or alias, descending, is_alias)
    links: list[Link]
    top: int | None
    every_column: bool = False


def parse(text: str, table_of: Callable[[str], Table]) -> Query:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise _error(f"the query is not XML ({exc}).") from None
    if root.tag != "fetch":
        raise _error("the root element must be <fetch>.")
    aggregate = root.get("aggregate") == "true"
    top = root.get("top") or root.get("count")
    entities = root.findall("entity")
    if len(entities) != 1:
        raise _error("a query has exactly one <entity>.")
    entity = entities[0]
    table = _table(table_of, entity.get("name"))
    query = Query(table, aggregate, [], [], [], [], int(top) if top and top.isdigit() else None)
    _read_entity(entity, table, query, None, table_of)
    if aggregate:
        for a in all_attributes(query):
            if not a.alias:
                raise _error(f"an aggregate query needs an alias on every attribute ({a.column.name}).")
            if not a.aggregate and not a.groupby:
                raise _error(f"in an aggregate query {a.column.name} needs aggregate= or groupby=.")
    return query


def _table(table_of: Callable[[str], Table], name: str | None) -> Table:
    try:
        return table_of(name or "")
    except KeyError:
        raise _error(f"there is no table '{name}'.") from None


def _column(table: Table, name: str | None) -> Column:
    column = table.column(name or "")
    if column is None:
        raise _error(f"'{table.logical_name}' entity doesn't contain attribute with Name = '{name}'.")
    return column


def _read_entity(element: ET.Element, table: Table, query: Query, link: Link | None,
                 table_of: Callable[[str], Table]) -> None:
    attributes = link.attributes if link else query.attributes
    filters = link.filters if link else query.filters
    for child in element:
        if child.tag == "attribute":
            aggregate, dategrouping = child.get("aggregate"), child.get("dategrouping")
            if aggregate and aggregate not in AGGREGATES:
                raise _error(f"aggregate '{aggregate}' is not supported.")
            if dategrouping and dategrouping not in DATE_GROUPINGS:
                raise _error(f"dategrouping '{dategrouping}' is not supported.")
            column = _column(table, child.get("name"))
            if dategrouping and column.type != "datetime":
                raise _error(f"dategrouping needs a date column, not {column.name}.")
            attributes.append(Attribute(table, column, child.get("alias"), aggregate, child.get("groupby") == "true",
                                        dategrouping, f"{link.alias}." if link else ""))
        elif child.tag == "all-attributes":
            query.every_column = link is None or query.every_column
        elif child.tag == "order":
            if link is not None:
                raise _error("<order> inside <link-entity> is not supported here.")
            name = child.get("alias") or child.get("attribute")
            if not name:
                raise _error("<order> needs attribute= or alias=.")
            if child.get("attribute"):
                _column(table, name)
            query.orders.append((name, child.get("descending") == "true", bool(child.get("alias"))))
        elif child.tag == "filter":
            filters.append(_filter(child, table))
        elif child.tag == "link-entity":
            linked = _table(table_of, child.get("name"))
            new = Link(linked, _column(linked, child.get("from")), _column(table, child.get("to")),
                       child.get("alias") or linked.logical_name, child.get("link-type", "inner") == "outer")
            if child.get("link-type", "inner") not in ("inner", "outer"):
                raise _error(f"link-type '{child.get('link-type')}' is not supported.")
            _read_entity(child, linked, query, new, table_of)
            (link.links if link else query.links).append(new)
        else:
            raise _error(f"<{child.tag}> is not supported here.")


def _links(links: list[Link]):
    for link in links:
        yield link
        yield from _links(link.links)


def linked_tables(query: Query) -> list[Table]:
    return [link.table for link in _links(query.links)]


def all_attributes(query: Query) -> list[Attribute]:
    return list(query.attributes) + [a for link in _links(query.links) for a in link.attributes]


# --- filters ---------------------------------------------------------------------------------------------------------

def _filter(element: ET.Element, table: Table) -> Callable[[Row, dt.datetime], bool]:
    kind = element.get("type", "and")
    if kind not in ("and", "or"):
        raise _error(f"filter type '{kind}' is not supported.")
    parts = []
    for child in element:
        if child.tag == "condition":
            parts.append(_condition(child, table))
        elif child.tag == "filter":
            parts.append(_filter(child, table))
        else:
            raise _error(f"<{child.tag}> inside <filter> is not supported.")
    if kind == "and":
        return lambda row, now: all(p(row, now) for p in parts)
    return lambda row, now: any(p(row, now) for p in parts)


def _typed(column: Column, text: str) -> Any:
    kind = column.type
    try:
        if kind in ("integer", "choice", "state", "status"):
            return int(text)
        if kind in ("decimal", "money"):
            return Decimal(text)
        if kind == "boolean":
            if text not in ("0", "1", "true", "false"):
                raise ValueError(text)
            return text in ("1", "true")
        if kind == "datetime":
            value = parse_datetime(text)
            if value is None:
                raise ValueError(text)
            return value
        if kind in ("lookup", "uniqueidentifier", "string", "memo"):
            return text.strip("{}").lower()
    except (ValueError, ArithmeticError):
        pass
    raise _error(f"the value '{text}' is not valid for {column.name} ({kind}).")


def _stored(column: Column, value: Any) -> Any:
    if value is None:
        return None
    if column.type == "lookup":
        return value["id"].lower()
    if column.type == "datetime":
        return parse_datetime(value)
    if column.type in ("string", "memo", "uniqueidentifier"):
        return value.lower()
    return value


def _month_start(moment: dt.datetime) -> dt.datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _condition(element: ET.Element, table: Table) -> Callable[[Row, dt.datetime], bool]:
    if element.get("entityname"):
        raise _error("conditions on a link-entity's columns (entityname=) are not supported here.")
    column = _column(table, element.get("attribute"))
    op = element.get("operator")
    raw = element.get("value")
    values = [v.text or "" for v in element.findall("value")]
    name = column.name

    def get(row: Row) -> Any:
        return _stored(column, row.get(name))

    if op in ("null", "not-null"):
        return (lambda row, now: get(row) is None) if op == "null" else (lambda row, now: get(row) is not None)
    if op in ("in", "not-in"):
        wanted = [_typed(column, v) for v in values] or [_typed(column, raw or "")]
        if op == "in":
            return lambda row, now: get(row) is not None and get(row) in wanted
        return lambda row, now: get(row) is not None and get(row) not in wanted
    if op in ("this-month", "last-month", "today", "last-x-hours", "last-x-days"):
        if column.type != "datetime":
            raise _error(f"{op} needs a date column, not {name}.")
        amount = int(raw) if raw and raw.isdigit() else None
        if op in ("last-x-hours", "last-x-days") and amount is None:
            raise _error(f"{op} needs a whole number value.")

        def window(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
            if op == "this-month":
                start = _month_start(now)
                return start, (start + dt.timedelta(days=32)).replace(day=1)
            if op == "last-month":
                end = _month_start(now)
                return _month_start(end - dt.timedelta(days=1)), end
            if op == "today":
                start = now.replace(hour=0, minute=0, second=0, microsecond=0)
                return start, start + dt.timedelta(days=1)
            if op == "last-x-hours":
                return now - dt.timedelta(hours=amount), now
            start = (now - dt.timedelta(days=amount)).replace(hour=0, minute=0, second=0, microsecond=0)
            return start, now
        return lambda row, now: get(row) is not None and window(now)[0] <= get(row) < window(now)[1] + \
            (dt.timedelta(seconds=1) if op in ("last-x-hours", "last-x-days") else dt.timedelta(0))
    if op in ("on-or-after", "on-or-before"):
        day = _typed(column, raw or "").date()
        if op == "on-or-after":
            return lambda row, now: get(row) is not None and get(row).date() >= day
        return lambda row, now: get(row) is not None and get(row).date() <= day
    if op in ("like", "not-like"):
        if column.type not in ("string", "memo"):
            raise _error(f"{op} needs a text column, not {name}.")
        pattern = re.compile("^" + ".*".join(re.escape(p) for p in (raw or "").lower().split("%")) + "$", re.S)
        if op == "like":
            return lambda row, now: get(row) is not None and bool(pattern.match(get(row)))
        return lambda row, now: get(row) is not None and not pattern.match(get(row))
    compare = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
               "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b}.get(op or "")
    if compare is None:
        raise _error(f"the condition operator '{op}' is not supported here.")
    wanted = _typed(column, raw if raw is not None else "")
    return lambda row, now: get(row) is not None and compare(get(row), wanted)


# --- execution -------------------------------------------------------------------------------------------------------

def execute(query: Query, rows_of: Callable[[str], list[Row]], now: dt.datetime) -> list[dict[str, Any]]:
    joined = [({}, row) for row in rows_of(query.table.logical_name) if all(f(row, now) for f in query.filters)]
    joined = [(links, row) for row in (r for _, r in joined) for links in _join(query.links, row, rows_of, now)]
    if query.aggregate:
        return _aggregate(query, joined)
    out = []
    for links, row in joined:
        record: dict[str, Any] = {}
        columns = list(query.table.columns) if query.every_column else [a.column for a in query.attributes]
        for column in [query.table.column(query.table.primary_id), *columns]:
            record[column.value_property] = _plain(column, row.get(column.name))
        for link_alias, (link, linked) in links.items():
            for a in link.attributes:
                record[f"{link_alias}.{a.column.value_property}"] = _plain(a.column, (linked or {}).get(a.column.name))
        out.append((record, row))
    for name, descending, _ in reversed(query.orders):
        column = query.table.column(name)
        out.sort(key=lambda pair, c=column: _sort_key(_stored(c, pair[1].get(c.name))), reverse=descending)
    records = [r for r, _ in out]
    return records[:query.top] if query.top is not None else records


def _join(links: list[Link], row: Row, rows_of: Callable[[str], list[Row]], now: dt.datetime
          ) -> list[dict[str, tuple[Link, Row | None]]]:
    combos: list[dict[str, tuple[Link, Row | None]]] = [{}]
    for link in links:
        key = _stored(link.to_column, row.get(link.to_column.name))
        matches = [r for r in rows_of(link.table.logical_name)
                   if key is not None and _stored(link.from_column, r.get(link.from_column.name)) == key
                   and all(f(r, now) for f in link.filters)]
        if not matches:
            if not link.outer:
                return []
            matches = [None]
        combos = [{**c, link.alias: (link, m)} for c in combos for m in matches]
    return combos


def _plain(column: Column, value: Any) -> Any:
    return value["id"] if column.type == "lookup" and value else value


def _sort_key(value: Any) -> tuple:
    return (value is not None, value if value is not None else 0)


def _date_part(value: Any, grouping: str) -> int | None:
    moment = parse_datetime(value) if isinstance(value, str) else None
    if moment is None:
        return None
    # Weeks start on Sunday and week 1 holds January 1 (the fixture: 2023-03-25 is week 12, 2023-08-27 week 35).
    jan1 = moment.replace(month=1, day=1)
    week = (moment.timetuple().tm_yday - 1 + (jan1.weekday() + 1) % 7) // 7 + 1
    return {"day": moment.day, "week": week, "month": moment.month,
            "quarter": (moment.month - 1) // 3 + 1, "year": moment.year}[grouping]


def _aggregate(query: Query, joined: list[tuple[dict, Row]]) -> list[dict[str, Any]]:
    attributes = all_attributes(query)
    groups = [a for a in attributes if a.groupby]
    measures = [a for a in attributes if a.aggregate]

    def value_of(a: Attribute, links: dict, row: Row) -> Any:
        source = row if not a.prefix else (links.get(a.prefix[:-1], (None, None))[1] or {})
        raw = source.get(a.column.name)
        if a.dategrouping:
            return _date_part(raw, a.dategrouping)
        return _plain(a.column, raw)

    buckets: dict[tuple, list[tuple[dict, Row]]] = {}
    for links, row in joined:
        buckets.setdefault(tuple(value_of(a, links, row) for a in groups), []).append((links, row))
    if not groups and not buckets:
        buckets[()] = []
    results = []
    for key, members in buckets.items():
        record: dict[str, Any] = {a.alias: k for a, k in zip(groups, key)}
        for a in measures:
            values = [value_of(a, links, row) for links, row in members]
            present = [v for v in values if v is not None]
            if a.aggregate == "count":
                record[a.alias] = len(values)
            elif a.aggregate == "countcolumn":
                record[a.alias] = len(present)
            elif not present:
                record[a.alias] = None if a.aggregate != "sum" else 0
            elif a.aggregate == "sum":
                record[a.alias] = sum(present, Decimal(0) if isinstance(present[0], Decimal) else 0)
            elif a.aggregate == "avg":
                total = sum(Decimal(str(v)) for v in present)
                # A whole-number column averages to a whole number (the fixture: 35,200 / 9 -> 3,911).
                record[a.alias] = int(total / len(present)) if a.column.type == "integer" else total / len(present)
            else:
                record[a.alias] = (min if a.aggregate == "min" else max)(present)
        results.append(record)
    for name, descending, is_alias in reversed(query.orders):
        if not is_alias:
            raise _error("an aggregate query orders by alias.")
        results.sort(key=lambda r, n=name: _sort_key(r.get(n)), reverse=descending)
    return results[:query.top] if query.top is not None else results


def run(text: str, tables: Mapping[str, Table], rows: Mapping[str, Mapping[str, Row]], now: dt.datetime,
        *, expected_table: str | None = None) -> tuple[Query, list[dict[str, Any]]]:
    """Parse and run `text` over `rows` (logical name -> id -> row); the entity must be `expected_table` if given."""
    def table_of(name: str) -> Table:
        return tables[name]
    query = parse(text, table_of)
    if expected_table is not None and query.table.logical_name != expected_table:
        raise _error(f"the query's entity {query.table.logical_name} is not the entity set's ({expected_table}).")
    return query, execute(query, lambda name: list(rows.get(name, {}).values()), now)
