#!/usr/bin/python3
"""Helper of perf/schema_bench.sh (run it with /usr/bin/python3).

    schema_bench.py gen BODY_DIR             writes the three request bodies
    schema_bench.py run SCHEMA_DIR BODY_DIR MIN_SECONDS REPEATS
                                             times python3-jsonschema on them
    schema_bench.py table RESULTS...         prints the comparison table

Bodies are deterministic (a fixed seed), compact JSON with some non-ASCII
names, each padded (in an order's "notes") to exactly its nominal size:
    order-1k.json   one order, 1024 bytes          schema order.json
    batch-64k.json  {"batch_id", "orders": [...]}  schema batch.json, 65536 bytes
    array-1m.json   [order, order, ...]            schema orders.json, 1048576 bytes
    array-10m.json  the same, 10485760 bytes (C only: Python would take minutes)
Result lines are "RESULT<TAB>case<TAB>bytes<TAB>metric<TAB>MB/s" (MB = 10^6 bytes,
per second of this thread's CPU time, as in schema_bench.c).
"""

import json
import os
import random
import sys
import textwrap
import time

CASES = [  # name, schema file, body file, nominal size, timed in Python too
    ("1 KiB order", "order.json", "order-1k.json", 1024, True),
    ("64 KiB batch", "batch.json", "batch-64k.json", 64 * 1024, True),
    ("1 MiB array", "orders.json", "array-1m.json", 1024 * 1024, True),
    ("10 MiB array", "orders.json", "array-10m.json", 10 * 1024 * 1024, False),
]

FIRST = ["Jane", "Zoë", "Łukasz", "Søren", "Amélie", "Kenji", "Ana", "Oluwaseun", "Mia", "José"]
LAST = ["Doe", "Müller", "Kowalski", "Ødegaard", "Dubois", "Tanaka", "García", "Adeyemi"]
CITIES = [  # city, postal code, country("Paris", "75002", "FR"), ("Berlin", "10115", "DE"), ("Kraków", "31-001", "PL"),
          ("Oslo", "0150", "NO"), ("Madrid", "28013", "ES"), ("Leeds", "LS1 4AP", "GB")]
PRODUCTS = ["Widget", "Gadget", "Sprocket, large", "Cable 2 m", "Café au lait mug",
            "Notebook A5", "USB-C charger", "Desk lamp"]
ASCII = str.maketrans("ëŁøØéíóñü", "eLoOeionu")
NOTE = "Please leave the parcel with the neighbour if nobody answers. "


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def address(rng):
    city, postal, country = rng.choice(CITIES)
    return {"line1": "%d %s" % (rng.randint(1, 250), rng.choice(["Main Street", "rue de la Paix",
                                                                 "Hauptstraße", "Calle Mayor"])),
            "line2": rng.choice([None, "Flat %d" % rng.randint(1, 40)]),
            "city": city, "postal_code": postal, "country": country}


def order(rng, n):
    items = []
    for _ in range(rng.randint(2, 5)):
        items.append({"sku": "SKU-%05d" % rng.randint(0, 99999),
                      "name": rng.choice(PRODUCTS),
                      "qty": rng.randint(1, 9),
                      "unit_price_cents": rng.randint(99, 99999),
                      "tax_rate": rng.choice([0.0, 0.055, 0.1, 0.2]),
                      "gift": rng.random() < 0.1})
    first, last = rng.choice(FIRST), rng.choice(LAST)
    ship = address(rng)
    return {
        "id": "ord-%08d" % n,
        "created_at": "2026-%02d-%02dT%02d:%02d:%02dZ" % (
            rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59),
            rng.randint(0, 59)),
        "status": rng.choice(["pending", "paid", "shipped", "delivered"]),
        "currency": rng.choice(["EUR", "GBP", "NOK", "PLN"]),
        "customer": {"id": "cus-%08x" % rng.getrandbits(32),
                     "email": ("%s.%s@example.com" % (first, last)).translate(ASCII).lower(),
                     "name": "%s %s" % (first, last),
                     "phone": rng.choice([None, "+33 1 23 45 67 %02d" % rng.randint(0, 99)]),
                     "vip": rng.random() < 0.2},
        "shipping_address": ship,
        "billing_address": ship if rng.random() < 0.7 else address(rng),
        "items": items,
        "discount_codes": rng.sample(["WINTER10", "FREESHIP", "VIP2026", "BUNDLE3"],
                                     rng.randint(0, 2)),
        "total_cents": sum(i["qty"] * i["unit_price_cents"] for i in items),
        "notes": "",
        "metadata": {"source": rng.choice(["web", "app"]), "ab_bucket": rng.randint(0, 9),
                     "referrer": "newsletter"},
    }


def pad(doc, last_order, size):
    """Grows last_order's notes until dumps(doc) is exactly size bytes."""
    gap = size - len(dumps(doc))
    if gap < 0 or gap > 2000:
        raise SystemExit("schema_bench.py: cannot pad to %d bytes (gap %d)" % (size, gap))
    last_order["notes"] = (NOTE * (gap // len(NOTE) + 1))[:gap]
    data = dumps(doc)
    assert len(data) == size, (len(data), size)
    return data


def many(rng, size, wrap):
    """wrap(orders) -> document; as many orders as fit in size, then padded."""
    base = len(dumps(wrap([]))) - 1  # each order adds its length and a comma (or "]")
    orders, total = [], base
    while True:
        o = order(rng, len(orders) + 1)
        if total + len(dumps(o)) + 1 > size:
            break
        orders.append(o)
        total += len(dumps(o)) + 1
    doc = wrap(orders)
    return pad(doc, orders[-1], size)


def gen(body_dir):
    os.makedirs(body_dir, exist_ok=True)
    rng = random.Random(20261129)
    o = order(rng, 1)
    while len(dumps(o)) > 1000:  # a typical order, with room for a note
        o = order(rng, 1)
    bodies = {
        "order-1k.json": pad(o, o, 1024),
        "batch-64k.json": many(rng, 64 * 1024,
                               lambda orders: {"batch_id": "bat-000042", "source": "import",
                                               "orders": orders}),
        "array-1m.json": many(rng, 1024 * 1024, lambda orders: orders),
        "array-10m.json": many(rng, 10 * 1024 * 1024, lambda orders: orders),
    }
    for name, data in bodies.items():
        with open(os.path.join(body_dir, name), "wb") as f:
            f.write(data)


def load(path):
    with open(path, "rb") as f:
        return f.read()


def invalid_variant(body):
    """The body with its first "qty" set to 0 (below the minimum of 1)."""
    at = body.index(b'"qty":') + len(b'"qty":')
    return body[:at] + b"0" + body[at + 1:]


def validator_for(schema_dir, schema_file):
    from jsonschema import Draft202012Validator
    schemas = {name: json.loads(load(os.path.join(schema_dir, name)))
               for name in ("order.json", "batch.json", "orders.json")}
    for s in schemas.values():
        Draft202012Validator.check_schema(s)
    root = schemas[schema_file]
    try:  # jsonschema >= 4.18: the referencing library
        from referencing import Registry, Resource
        registry = Registry().with_resources(
            (name, Resource.from_contents(s)) for name, s in schemas.items())
        return Draft202012Validator(root, registry=registry)
    except ImportError:  # Debian bookworm's 4.10: RefResolver; "order.json" resolves to itself
        from jsonschema import RefResolver
        return Draft202012Validator(root, resolver=RefResolver("", root, store=schemas))


def best_rate(fn, nbytes, min_time, repeats):
    best = 0.0
    for _ in range(repeats):
        n, t0 = 0, time.thread_time()  # CPU time, as schema_bench.c measures
        while True:
            fn()
            n += 1
            el = time.thread_time() - t0
            if el >= min_time:
                break
        best = max(best, nbytes * n / el / 1e6)
    return best


def run(schema_dir, body_dir, min_time, repeats):
    import jsonschema
    try:
        from importlib.metadata import version
        ver = version("jsonschema")
    except Exception:
        ver = getattr(jsonschema, "__version__", "?")
    print("# python %s, jsonschema %s, Draft202012Validator (format not asserted), "
          "json.loads + validate per call" % (sys.version.split()[0], ver), flush=True)
    for label, schema_file, body_file, _, in_python in CASES:
        if not in_python:
            continue
        v = validator_for(schema_dir, schema_file)
        body = load(os.path.join(body_dir, body_file))
        errs = list(v.iter_errors(json.loads(body)))
        if errs:
            raise SystemExit("jsonschema finds %s invalid: %s" % (body_file, errs[0].message))
        if v.is_valid(json.loads(invalid_variant(body))):
            raise SystemExit("jsonschema accepts the qty=0 variant of %s" % body_file)

        def once():
            v.validate(json.loads(body))

        mbps = best_rate(once, len(body), min_time, repeats)
        print("RESULT\t%s\t%d\tjsonschema\t%.3f" % (label, len(body), mbps), flush=True)


def table(paths):
    res, order_seen, sizes = {}, [], {}
    for p in paths:
        for line in open(p, encoding="utf-8"):
            if not line.startswith("RESULT\t"):
                continue
            _, label, nbytes, metric, mbps = line.rstrip("\n").split("\t")
            if label not in order_seen:
                order_seen.append(label)
            sizes[label] = int(nbytes)
            res[(label, metric)] = float(mbps)

    def cell(label, metric):
        v = res.get((label, metric))
        return "%.1f" % v if v is not None else "-"

    def ratio(label, a, b):
        x, y = res.get((label, a)), res.get((label, b))
        return "%.1fx" % (x / y) if x and y else "-"

    cols = ["body", "bytes", "ringgate validate", "ringgate (malloc/call)", "ringgate parse",
            "jansson parse", "python jsonschema", "rg/jansson", "rg/jsonschema"]
    rows = [[label, str(sizes[label]), cell(label, "rg_validate_in"),
             cell(label, "rg_validate"), cell(label, "rg_parse"), cell(label, "jansson_parse"),
             cell(label, "jsonschema"), ratio(label, "rg_validate_in", "jansson_parse"),
             ratio(label, "rg_validate_in", "jsonschema")] for label in order_seen]
    widths = [max(len(r[i]) for r in rows + [cols]) for i in range(len(cols))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                              for i, (c, w) in enumerate(zip(r, widths)))
    print(fmt(cols))
    print(fmt(["-" * w for w in widths]))
    for r in rows:
        print(fmt(r))
    note = ("MB/s = 10^6 body bytes per second of CPU time (one thread), best of the repeats. "
            "ringgate validate: schema_validate_in with one reused arena (the hot path); "
            "(malloc/call): schema_validate; parse: schema_validate_in against the schema "
            "`true` (the JSON reader alone); jansson parse: json_loadb + json_decref; python "
            "jsonschema: json.loads + Draft202012Validator.validate. Ratios use ringgate "
            "validate.")
    print("\n" + textwrap.fill(note, 96))


def main(argv):
    if len(argv) >= 2 and argv[1] == "gen" and len(argv) == 3:
        gen(argv[2])
    elif len(argv) == 6 and argv[1] == "run":
        run(argv[2], argv[3], float(argv[4]), int(argv[5]))
    elif len(argv) >= 3 and argv[1] == "table":
        table(argv[2:])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
