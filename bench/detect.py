"""Off-platform contact detection: precision, recall, per-kind confusion and CPU cost.

    .venv/bin/python bench/detect.py [--repeat 50]

Runs the detector over the labelled corpus (``tests/chat/detect_corpus.jsonl``)
once for the quality figures, then ``--repeat`` times for the cost: CPU time per
message (``time.thread_time_ns``, so other processes on the machine do not count)
with its mean, p50, p99 and max. The first pass warms the ``phonenumbers``
metadata, which it loads lazily per region.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chat.detect import KINDS, detect

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "chat" / "detect_corpus.jsonl"


def quality(rows: list[dict[str, Any]]) -> None:
    tp = fp = fn = tn = 0
    confusion: dict[str, Counter[str]] = {kind: Counter() for kind in (*KINDS, "none")}
    for row in rows:
        found = {f.kind for f in detect(row["text"], row.get("previous", []))}
        expected = row["kind"] or "none"
        if row["label"] == "flag":
            tp += bool(found)
            fn += not found
        else:
            fp += bool(found)
            tn += not found
        if not found:
            confusion[expected]["none"] += 1
        elif expected in found:
            confusion[expected][expected] += 1
        else:
            for kind in found:
                confusion[expected][kind] += 1
    print(f"corpus: {len(rows)} messages ({tp + fn} to flag, {fp + tn} clean)")
    print(f"precision {tp / max(1, tp + fp):.4f}  recall {tp / max(1, tp + fn):.4f}  (tp {tp} fp {fp} fn {fn} tn {tn})")
    columns = (*KINDS, "none")
    print("\nper-kind confusion (rows: labelled kind, columns: detected; a match counts once)")
    print("".ljust(10) + "".join(c[:9].rjust(10) for c in columns))
    for kind in columns:
        counts = confusion[kind]
        print(kind.ljust(10) + "".join(str(counts[c] or ".").rjust(10) for c in columns))


def cost(rows: list[dict[str, Any]], repeat: int) -> None:
    samples: list[int] = []
    clock = time.thread_time_ns
    for _ in range(repeat):
        for row in rows:
            text, previous = row["text"], row.get("previous", [])
            start = clock()
            detect(text, previous)
            samples.append(clock() - start)
    samples.sort()

    def pct(p: float) -> float:
        return samples[min(len(samples) - 1, int(len(samples) * p))] / 1000

    mean = sum(samples) / len(samples) / 1000
    print(f"\nCPU per message over {len(samples)} runs: mean {mean:.1f} µs, p50 {pct(0.5):.1f} µs, "
          f"p99 {pct(0.99):.1f} µs, max {samples[-1] / 1000:.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50, help="passes over the corpus for the cost figures")
    args = parser.parse_args()
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    quality(rows)
    cost(rows, args.repeat)


if __name__ == "__main__":
    main()
