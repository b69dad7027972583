#!/usr/bin/env python3
"""Prints the planning benchmarks (benches/plan.rs) as Markdown tables.

Run `cargo bench --bench plan` first; this reads criterion's estimates
from target/criterion and prints, per scenario, the median time of one
decision for each number of locations (rows) and database size (columns),
with the targets of issue 2 (1,000 times upstream's 20 ms for one location
and 0.45 s for 10,000, linear in between).
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
GROUPS = ["create_from_image_stores", "create_from_image_mixed"]
DBS = [10, 1_000, 100_000]
LOCATIONS = [1, 10, 100, 1_000, 10_000]


def target_us(locations):
    # Upstream: ~20 ms with one location, ~0.45 s with 10,000: linear.
    upstream_ms = 20 + (450 - 20) * (locations - 1) / (10_000 - 1)
    return upstream_ms  # ms upstream == µs at 1,000 times faster


def fmt(us):
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.1f} µs"


for group in GROUPS:
    print(f"\n{group} (median per decision)\n")
    print("| locations | " + " | ".join(f"db {d:,}" for d in DBS) + " | target (1,000× upstream) |")
    print("|---:|" + "---:|" * len(DBS) + "---:|")
    for n in LOCATIONS:
        cells = []
        for d in DBS:
            f = ROOT / group / f"db_{d}" / str(n) / "new" / "estimates.json"
            if f.exists():
                e = json.loads(f.read_text())
                cells.append(fmt(e["median"]["point_estimate"] / 1000))
            else:
                cells.append("—")
        print(f"| {n:,} | " + " | ".join(cells) + f" | {fmt(target_us(n))} |")
