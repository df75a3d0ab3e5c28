"""Run the engine in this process or in several, print progress, build the report."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import queue
import resource
import sys
import time
from dataclasses import replace
from typing import Any

from .engine import Engine
from .options import Options
from .stats import Results, Window, percentile

TYPES = ("msg", "msg_resumed", "ack", "typing", "receipt", "read", "connect", "sync", "open")


def raise_open_files(wanted: int = 20_000) -> None:
    """Lift this process's soft open-file limit as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _event_loop_runner() -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run
    return uvloop.run


class Progress:
    """One line per interval: connections, rates, errors, rolling p50/p99, generator CPU."""

    def __init__(self, interval: float, stream: Any = sys.stderr) -> None:
        self.interval = interval
        self.stream = stream
        self.start = time.perf_counter()
        self.cpu = _cpu_children_and_self()

    def line(self, window: Window, connections: int) -> None:
        now = time.perf_counter()
        cpu = _cpu_children_and_self()
        busy = (cpu - self.cpu) / self.interval * 100
        self.cpu = cpu
        lat = sorted(window.latencies)
        print(
            f"[{now - self.start:6.1f}s] conns {connections:6d}  sent/s {window.sent / self.interval:8.0f}  "
            f"delivered/s {window.delivered / self.interval:8.0f}  errors {window.errors:4d}  "
            f"p50 {percentile(lat, 0.5) / 1000:6.2f} ms  p99 {percentile(lat, 0.99) / 1000:7.2f} ms  "
            f"gen cpu {busy:5.0f}%",
            file=self.stream, flush=True,
        )


def _cpu_children_and_self() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_in_process(opt: Options, progress: bool = True) -> Results:
    raise_open_files()
    printer = Progress(opt.progress) if progress and opt.progress > 0 else None

    async def main() -> Results:
        engine = Engine(opt, printer.line if printer else None)
        return await engine.run()

    result: Results = _event_loop_runner()(main())
    return result


def _worker(opt: Options, out: Any) -> None:
    raise_open_files()

    def tick(window: Window, connections: int) -> None:
        out.put(("tick", opt.worker, window, connections))

    async def main() -> Results:
        return await Engine(opt, tick).run()

    try:
        result = _event_loop_runner()(main())
        out.put(("done", opt.worker, result, 0))
    except BaseException as exc:
        out.put(("failed", opt.worker, repr(exc), 0))
        raise


def shard(opt: Options, procs: int) -> list[Options]:
    def part(total: int, k: int) -> int:
        return total // procs + (1 if k < total % procs else 0)

    return [
        replace(opt, worker=k, procs=procs, shops=max(1, part(opt.shops, k)), buyers=part(opt.buyers, k),
                rate=opt.rate / procs, ramp=opt.ramp / procs, seed=opt.seed * 1000 + k,
                connect_concurrency=max(1, opt.connect_concurrency // procs), run_id=f"{opt.run_id}w{k}")
        for k in range(procs)
    ]


def run_in_processes(opt: Options) -> Results:
    """``--procs N``: N workers, each with its share of shops, buyers and rate; results merged."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(part, out), daemon=True) for part in shard(opt, opt.procs)]
    for w in workers:
        w.start()
    merged = Results()
    merged.procs = opt.procs
    done = 0
    window, conns, last = Window(), [0] * opt.procs, time.perf_counter()
    printer = Progress(opt.progress) if opt.progress > 0 else None
    deadline = time.monotonic() + opt.duration + opt.warmup + opt.drain + 600
    while done < opt.procs and time.monotonic() < deadline:
        try:
            kind, index, payload, connections = out.get(timeout=1.0)
        except queue.Empty:
            if all(not w.is_alive() for w in workers):
                break
            continue
        if kind == "tick":
            window.merge(payload)
            conns[index] = connections
            if printer and time.perf_counter() - last >= opt.progress * 0.95:
                printer.line(window, sum(conns))
                window, last = Window(), time.perf_counter()
        elif kind == "done":
            merged.merge(payload)
            done += 1
        else:
            merged.error("worker", str(payload))
            done += 1
    for w in workers:
        w.join(10)
        if w.is_alive():
            w.kill()
    merged.procs = opt.procs
    return merged


def run(opt: Options) -> Results:
    if opt.procs > 1:
        return run_in_processes(opt)
    return run_in_process(opt)


def report(opt: Options, res: Results) -> dict[str, Any]:
    seconds = res.measured_seconds or 1.0
    delivered = sum(res.latency[k].count for k in ("msg", "msg_resumed") if k in res.latency)
    types = {k: res.latency[k].summary(seconds) for k in TYPES if k in res.latency}
    errors_total = sum(res.errors.values())
    requests = max(1, res.counts.get("requests", 0))
    lag = sorted(res.sched_lag.values)
    cpu_share = res.cpu_seconds / seconds / max(1, res.procs)
    gen = {
        "procs": res.procs,
        "cpu_seconds": round(res.cpu_seconds, 3),
        "cpu_percent_per_proc": round(cpu_share * 100, 1),
        "cpu_us_per_delivered_msg": round(res.cpu_seconds / delivered * 1e6, 1) if delivered else None,
        "sched_lag_p99_ms": percentile(lag, 0.99) / 1000,
        "sched_lag_max_ms": res.sched_lag.max / 1000,
        "saturated": cpu_share > 0.85 or percentile(lag, 0.99) > 10_000,
    }
    hub = None
    if res.hub_cpu_seconds is not None:
        hub = {
            "pids": opt.hub_pids,
            "cpu_seconds": round(res.hub_cpu_seconds, 3),
            "cpu_percent": round(res.hub_cpu_seconds / seconds * 100, 1),
            "cpu_us_per_delivered_msg": round(res.hub_cpu_seconds / delivered * 1e6, 1) if delivered else None,
        }
    correctness = {
        "checked": opt.check,
        "acked_messages": res.counts.get("acked_messages", 0),
        "lost": res.correctness.get("lost", 0),
        "duplicated": res.correctness.get("duplicate", 0),
        "reordered": res.correctness.get("reordered", 0),
    }
    correctness["ok"] = not (correctness["lost"] or correctness["duplicated"] or correctness["reordered"])
    failures: list[str] = []
    if opt.check and not correctness["ok"]:
        failures.append("correctness: lost {lost}, duplicated {duplicated}, reordered {reordered}".format(
            **correctness))
    p99 = types.get("msg", {}).get("p99_ms")
    if opt.max_p99_ms is not None and (p99 is None or p99 > opt.max_p99_ms):
        failures.append(f"msg p99 {p99} ms > limit {opt.max_p99_ms} ms")
    error_rate = errors_total / requests
    if opt.max_error_rate is not None and error_rate > opt.max_error_rate:
        failures.append(f"error rate {error_rate:.4f} > limit {opt.max_error_rate}")
    if delivered == 0 and (opt.rate > 0 or opt.window > 0):
        failures.append("no message was delivered")
    return {
        "target": opt.target,
        "urls": opt.urls,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "options": {k: v for k, v in opt.to_json().items() if k not in ("secret",)},
        "measured_seconds": round(seconds, 3),
        "connections_peak": res.peak_connections,
        "delivered_per_second": round(delivered / seconds, 1),
        "types": types,
        "errors": dict(res.errors),
        "error_rate": round(error_rate, 6),
        "counts": dict(res.counts),
        "correctness": correctness,
        "generator": gen,
        "hub": hub,
        "examples": res.examples[:20],
        "failures": failures,
        "ok": not failures,
    }


def render(rep: dict[str, Any]) -> str:
    lines = [
        f"target {rep['target']} {' '.join(rep['urls'])}",
        f"measured {rep['measured_seconds']} s, peak connections {rep['connections_peak']}, "
        f"delivered {rep['delivered_per_second']} msg/s",
        f"{'type':<10}{'count':>10}{'rate/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}",
    ]
    for name, t in rep["types"].items():
        lines.append(f"{name:<10}{t['count']:>10}{t['rate']:>10.1f}{t['p50_ms']:>9.2f}{t['p95_ms']:>9.2f}"
                     f"{t['p99_ms']:>9.2f}{t['max_ms']:>9.2f}")
    c = rep["correctness"]
    lines.append(f"correctness ({'checked' if c['checked'] else 'not checked'}): {c['acked_messages']} acked, "
                 f"lost {c['lost']}, duplicated {c['duplicated']}, reordered {c['reordered']}")
    lines.append(f"errors: {rep['errors'] or 'none'} (rate {rep['error_rate']})")
    g = rep["generator"]
    lines.append(f"generator: {g['procs']} proc(s), {g['cpu_percent_per_proc']}% of a core each, "
                 f"{g['cpu_us_per_delivered_msg']} us CPU per delivered msg, scheduler lag p99 "
                 f"{g['sched_lag_p99_ms']} ms" + ("  ** SATURATED: figures may measure the generator **"
                                                 if g["saturated"] else ""))
    if rep["hub"]:
        h = rep["hub"]
        lines.append(f"hub: {h['cpu_percent']}% CPU, {h['cpu_us_per_delivered_msg']} us CPU per delivered msg")
    skipped = {k: v for k, v in rep["counts"].items() if k.startswith(("skipped", "dropped"))}
    if skipped:
        lines.append(f"arrivals not sent: {skipped}")
    for example in rep["examples"][:5]:
        lines.append(f"  e.g. {example}")
    lines.append("OK" if rep["ok"] else "FAILED: " + "; ".join(rep["failures"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from .options import from_args

    opt = from_args(argv)
    if opt.run_id == "lt":  # unique user, shop and message ids, so runs against one hub never collide
        opt = replace(opt, run_id=f"lt{os.getpid() % 100000:x}{int(time.time()) % 100000:x}")
    res = run(opt)
    rep = report(opt, res)
    print(render(rep))
    if opt.json_path:
        with open(opt.json_path, "w") as f:
            json.dump(rep, f, indent=2, default=str)
    return 0 if rep["ok"] else 1
