"""Turn the load generators' outputs into result records, and the records into BENCHMARKS.md.

  report.py oha-record    SCENARIO TARGET RATE RUN LOAD1 OHA_JSON    EXTRA_JSON   -> one JSON line
  report.py wrk-record    SCENARIO TARGET RATE RUN LOAD1 WRK_OUTPUT  EXTRA_JSON   -> one JSON line
  report.py locust-record SCENARIO TARGET RATE RUN LOAD1 STATS_CSV   EXTRA_JSON   -> one JSON line
  report.py write OUT_DIR REPORT_PATH
"""

import csv
import json
import os
import re
import statistics
import sys
from collections import OrderedDict
from pathlib import Path

UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def base(argv):
    scenario, target, rate, run, load1 = argv[:5]
    return {"scenario": scenario, "target": target, "rate": int(rate), "run": int(run), "load1": float(load1)}


def oha_record(argv):
    record = base(argv)
    data = json.loads(Path(argv[5]).read_text())
    summary, percentiles = data["summary"], data["latencyPercentiles"]
    statuses = data.get("statusCodeDistribution", {})
    errors = data.get("errorDistribution", {})
    record.update(
        requests=sum(statuses.values()) + sum(errors.values()),
        ok=sum(n for code, n in statuses.items() if code.startswith("2")),
        non_2xx=sum(n for code, n in statuses.items() if not code.startswith("2")),
        errors=sum(errors.values()),
        error_kinds=errors,
        rps=summary["requestsPerSec"],
        # oha reports seconds.
        p50_ms=percentiles["p50"] * 1000.0,
        p99_ms=percentiles["p99"] * 1000.0,
    )
    record.update(json.loads(argv[6]))
    return record


def wrk_duration_ms(text):
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(match.group(1)) * UNITS_MS[match.group(2)] if match else None


def wrk_record(argv):
    record = base(argv)
    text = Path(argv[5]).read_text()
    percentile = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", text, re.M))
    requests = re.search(r"(\d+) requests in", text)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = int(requests.group(1)) if requests else 0
    bad = int(non_2xx.group(1)) if non_2xx else 0
    record.update(
        requests=total,
        ok=total - bad,
        non_2xx=bad,
        errors=sum(int(n) for n in socket.groups()) if socket else 0,
        error_kinds=dict(zip(("connect", "read", "write", "timeout"), map(int, socket.groups()))) if socket else {},
        rps=float(rps.group(1)) if rps else 0.0,
        p50_ms=wrk_duration_ms(percentile.get("50", "")),
        p99_ms=wrk_duration_ms(percentile.get("99", "")),
    )
    record.update(json.loads(argv[6]))
    return record


def criterion_record(argv):
    """criterion-record SCENARIO NAME ESTIMATES_JSON: one criterion benchmark's median."""
    scenario, name, estimates = argv
    data = json.loads(Path(estimates).read_text())
    # "remux webm opus (30.5 s of audio)" -> the audio's length, for the real-time factor.
    audio = float(name.rsplit("(", 1)[1].split(" s", 1)[0]) if "(" in name else 0.0
    median_ms = data["median"]["point_estimate"] / 1e6
    return {"scenario": scenario, "target": name.split(" (")[0].replace("_", " "), "audio_s": audio,
            "median_ms": median_ms, "low_ms": data["median"]["confidence_interval"]["lower_bound"] / 1e6,
            "high_ms": data["median"]["confidence_interval"]["upper_bound"] / 1e6,
            "rate": 0, "run": 1, "requests": 0, "rps": 0, "p50_ms": median_ms, "p99_ms": 0,
            "errors": 0, "load1": 0.0}


def locust_record(argv):
    record = base(argv)
    rows = list(csv.DictReader(open(argv[5])))
    per_name = {}
    for row in rows:
        per_name[row["Name"]] = {
            "requests": int(row["Request Count"]),
            "failures": int(row["Failure Count"]),
            "rps": float(row["Requests/s"]),
            "p50_ms": float(row["50%"]) if row["50%"] not in ("", "N/A") else None,
            "p95_ms": float(row["95%"]) if row["95%"] not in ("", "N/A") else None,
            "p99_ms": float(row["99%"]) if row["99%"] not in ("", "N/A") else None,
        }
    total = per_name.get("Aggregated", {})
    record.update(
        requests=total.get("requests", 0),
        errors=total.get("failures", 0),
        rps=total.get("rps", 0.0),
        p50_ms=total.get("p50_ms"),
        p95_ms=total.get("p95_ms"),
        p99_ms=total.get("p99_ms"),
        endpoints={name: stats for name, stats in per_name.items() if name != "Aggregated"},
    )
    record.update(json.loads(argv[6]))
    return record


# ------------------------------------------------------------------------------------ report


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=2):
    if value is None:
        return "n/a"
    if isinstance(value, int) or abs(value) >= 1000:
        return f"{round(value):,}"
    return f"{value:,.{digits}f}"


def loads(records):
    return ", ".join(f"{r['load1']:.2f}" for r in records)


def verdict(ok):
    return "met" if ok else "**not met**"


def write(out_dir, report_path):
    out = Path(out_dir)
    machine = json.loads((out / "machine.json").read_text())
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    versions = (out / "versions.txt").read_text().strip() if (out / "versions.txt").exists() else ""
    commands = OrderedDict()
    if (out / "commands.txt").exists():
        for line in (out / "commands.txt").read_text().splitlines():
            label, _, command = line.partition(": ")
            if label != "a/warmup":
                commands.setdefault(label, command)

    def pick(scenario, target=None, rate=None):
        return [
            r for r in records
            if r["scenario"] == scenario and (target is None or r["target"] == target) and (rate is None or r["rate"] == rate)
        ]

    lines = []
    add = lines.append
    add("# Benchmarks")
    add("")
    add("Generated by `bash bench/run.sh` (" + ("quick smoke run" if machine["mode"] == "quick" else "full run")
        + f") on {machine['date']} at commit `{machine['commit']}`. Every figure is the **median of "
        + f"{max((r['run'] for r in records), default=1)} runs** unless marked otherwise; the 1-minute load average "
        + "at the start of each run is listed beside it, because this machine is shared with other jobs "
        + "(compilers, test suites) that the benchmark cannot stop. Prefer the ratios: both sides of a "
        + "comparison ran back to back, interleaved run by run, under the same background load.")
    add("")
    add("## Machine")
    add("")
    add("| | |")
    add("|---|---|")
    add(f"| CPU | {machine['cpu']}, `nproc` = {machine['nproc']} |")
    add(f"| memory | {machine['mem_gib']} GiB |")
    add(f"| kernel | {machine['kernel']} |")
    add(f"| open files per process (`ulimit -n`; the hard limit here, which root cannot raise in this sandbox) | {machine['fd_limit']} |")
    add(f"| toolchain | {machine['rustc']}, release profile (thin LTO, 1 codegen unit) |")
    add("")
    add("Load generators and servers: " + "; ".join(v for v in versions.splitlines() if v) + ".")
    add("Everything (client, service, simulator, Redis, nginx) runs on the same 2 cores, on 127.0.0.1.")
    add("")

    summary = []

    # ---- a
    a_rates = sorted({r["rate"] for r in pick("a")})
    if a_rates:
        add("## a. Gateway overhead (cache missing, upstream fixed at 50 ms)")
        add("")
        add("`oha` at a constant rate (`-q`, with `--latency-correction` so queueing delay counts, "
            "as wrk2 would) for the run's duration. **service**: `POST /api/analyze`, every body a "
            "different learner text, through the whole stack (request id, metrics, auth, per-user "
            "rate limit with its Redis script, single-flight with its Redis lease, cache lookups and "
            "writes in Redis, circuit breaker, retry, the Gemini client, the robust parser, the "
            "envelope). **direct**: the very request the service sends to Gemini (captured from the "
            "service, learner text swapped per line) straight to the simulator. Overhead = service "
            "minus direct, computed per run (the two ran back to back) and then the median taken.")
        add("")
        add("| rate (req/s) | service p50 | service p99 | direct p50 | direct p99 | **overhead p50** | **overhead p99** | achieved req/s (service / direct) | failed | cache hits (random repeats) | load avg per run |")
        add("|---|---|---|---|---|---|---|---|---|---|---|")
        for rate in a_rates:
            svc, direct = pick("a", "service", rate), pick("a", "direct", rate)
            pairs = [(s, d) for s in svc for d in direct if s["run"] == d["run"]]
            over50 = median([s["p50_ms"] - d["p50_ms"] for s, d in pairs])
            over99 = median([s["p99_ms"] - d["p99_ms"] for s, d in pairs])
            failed = sum(r["non_2xx"] + r["errors"] for r in svc + direct)
            hits = sum(r.get("cache_hits", 0) for r in svc)
            total = sum(r["requests"] for r in svc)
            add(f"| {rate:,} | {fmt(median([r['p50_ms'] for r in svc]))} ms | {fmt(median([r['p99_ms'] for r in svc]))} ms "
                f"| {fmt(median([r['p50_ms'] for r in direct]))} ms | {fmt(median([r['p99_ms'] for r in direct]))} ms "
                f"| **{fmt(over50)} ms** | **{fmt(over99)} ms** "
                f"| {fmt(median([r['rps'] for r in svc]), 0)} / {fmt(median([r['rps'] for r in direct]), 0)} "
                f"| {failed} | {hits:,} of {total:,} ({100.0 * hits / max(total, 1):.1f} %) | {loads(svc + direct)} |")
            if rate in (1000, 5000):  # the goal's rates; others only show where the curve bends
                summary.append((f"a. p99 gateway overhead at {rate:,} req/s", "< 1 ms", f"{fmt(over99)} ms",
                                over99 is not None and over99 < 1.0 and failed == 0))
        add("")
        per_command = {}
        served = 0
        for r in pick("a", "service"):
            served += r["requests"]
            for name, calls in r.get("redis_commands", {}).items():
                per_command[name] = per_command.get(name, 0) + calls
        if served and per_command:
            total = sum(per_command.values()) / served
            detail = ", ".join(f"`{name}` {calls / served:.2f}" for name, calls in sorted(per_command.items()))
            add(f"Redis commands per service request over these runs (from `INFO commandstats`): **{total:.2f}** ({detail}).")
            add("")
        # Where the two cores went during the service runs: the reason the overhead grows with the rate.
        cpu_rows = [r for r in pick("a", "service") if r.get("cpu_seconds")]
        if cpu_rows:
            add("CPU during the service runs (medians; from `/proc/PID/stat` and `/proc/stat`), in cores busy "
                "(CPU seconds per second of run) and, for the service, microseconds of CPU per request. "
                "**machine** is everything on the box, the load generator included; 2.00 is all of it.")
            add("")
            add("| rate (req/s) | service | simulator | Redis | machine | **service CPU per request** |")
            add("|---|---|---|---|---|---|")
            for rate in sorted({r["rate"] for r in cpu_rows}):
                rs = [r for r in cpu_rows if r["rate"] == rate]
                cores = lambda name: median([r["cpu_seconds"][name] / r["seconds"] for r in rs])
                per_request = median([r["cpu_seconds"]["service"] / max(r["requests"], 1) * 1e6 for r in rs])
                add(f"| {rate:,} | {fmt(cores('service'))} | {fmt(cores('simulator'))} | {fmt(cores('redis'))} "
                    f"| {fmt(cores('machine'))} | **{fmt(per_request, 0)} us** |")
            add("")

    # ---- b
    if pick("b"):
        svc, nginx = pick("b", "service"), pick("b", "nginx")
        ratios = [s["rps"] / n["rps"] for s in svc for n in nginx if s["run"] == n["run"] and n["rps"]]
        svc_rps, nginx_rps = median([r["rps"] for r in svc]), median([r["rps"] for r in nginx])
        ratio = median(ratios)
        add("## b. Cached hits vs a static server")
        add("")
        add("`wrk -t2 -c64` (closed loop, as fast as it goes), the same `POST /api/analyze` body every "
            "request (`RATE_LIMIT_PER_MINUTE=0`), answered from the in-process memory tier after the first. "
            "**nginx** (`worker_processes auto`, access log off) returns the same bytes, the service's own "
            "cached reply saved to a file (`bench/out/cached-reply.json`).")
        add("")
        add("| target | req/s | p50 | p99 | failed | cache hits counted / requests | load avg per run |")
        add("|---|---|---|---|---|---|---|")
        before = pick("b", "service-before")
        for name, rows in (("service", svc), ("nginx", nginx), ("service, before the fixes", before)):
            if not rows:
                continue
            hits = sum(r.get("cache_hits", 0) for r in rows) if name.startswith("service") else None
            requests = sum(r["requests"] for r in rows)
            hit_cell = "-" if hits is None else f"{hits:,} / {requests:,}"
            add(f"| {name} | {fmt(median([r['rps'] for r in rows]), 0)} | {fmt(median([r['p50_ms'] for r in rows]))} ms "
                f"| {fmt(median([r['p99_ms'] for r in rows]))} ms | {sum(r['non_2xx'] + r['errors'] for r in rows)} "
                f"| {hit_cell} | {loads(rows)} |")
        add("")
        add(f"Service / nginx throughput: **{fmt(ratio)}** (median of per-run ratios).")
        if before:
            gains = [s["rps"] / b["rps"] for s in svc for b in before if s["run"] == b["run"] and b["rps"]]
            add(f"This build / the build before the fixes (see Findings): **{fmt(median(gains))}** (median of per-run ratios).")
        add("")
        summary.append(("b. cached-hit throughput", ">= 20,000 req/s", f"{fmt(svc_rps, 0)} req/s",
                        svc_rps is not None and svc_rps >= 20_000))
        summary.append(("b. cached hits vs nginx", ">= 0.5", fmt(ratio), ratio is not None and ratio >= 0.5))

    # ---- c
    if pick("c"):
        rows = pick("c")
        in_flight = rows[0].get("in_flight")
        h2_connections = next((r.get("h2_connections") for r in rows if r.get("h2_connections")), 100)
        add(f"## c. {in_flight:,} requests in flight against a 2 s upstream")
        add("")
        seconds = next((r.get("seconds") for r in rows if r.get("seconds")), 0)
        add(f"{in_flight:,} `POST /api/analyze` at once, each a different learner text, against the simulator "
            "answering after 2 s. **HTTP/2 clients** (a mesh or an h2c ingress): `oha -n` sends exactly "
            f"{in_flight:,} at once, {h2_connections} connections with {in_flight // h2_connections} streams each "
            "(texts picked at random from a million, so a handful repeat and single-flight merges them; "
            f"hence the upstream calls column). **HTTP/1.1 clients** (an ingress proxy, one connection per "
            f"request): a burst of {in_flight:,} connections takes this box longer than the 2 s a request is held, "
            f"so instead `wrk -c{in_flight:,}` keeps every connection busy for {seconds} s, each sending its next "
            "request as soon as one is answered (unique texts). The service reaches the simulator over HTTP/2 "
            "by prior knowledge (`UPSTREAM_HTTP2_PRIOR_KNOWLEDGE=true`; against the cloud it is negotiated by "
            "TLS ALPN) on its 8 connections (`UPSTREAM_CONNECTIONS`). A fresh service and simulator per run, so "
            "`VmHWM` (peak resident set, `/proc/PID/status`) is that run's peak; the service's own "
            "`http_requests_in_flight` gauge and its open files were sampled every 200 ms.")
        add("")
        add("| clients | run | succeeded | failed | upstream calls | peak in flight (gauge) | p50 | p99 | peak open fds | **service VmHWM** | simulator VmHWM | load avg |")
        add("|---|---|---|---|---|---|---|---|---|---|---|---|")
        label = {"http2": "HTTP/2", "http1": "HTTP/1.1"}
        for r in sorted(rows, key=lambda r: (r["target"] != "http2", r["run"])):
            add(f"| {label.get(r['target'], r['target'])} | {r['run']} | {r['ok']:,} | {r['non_2xx'] + r['errors']} {r['error_kinds'] if r['errors'] else ''}"
                f"| {r.get('upstream_calls', 0):,} | {r.get('peak_in_flight', 0):,} "
                f"| {fmt(r['p50_ms'], 0)} ms | {fmt(r['p99_ms'], 0)} ms | {r['peak_fds']:,} | **{r['vm_hwm_kib'] / 1024:.0f} MiB** "
                f"| {r.get('simulator_vm_hwm_kib', 0) / 1024:.0f} MiB | {r['load1']:.2f} |")
        add("")
        add("p50 above 2 s is the 2 cores working through the load (every request is a cache miss with "
            "Redis round trips, and the simulator, Redis and the load generator share the cores), not requests "
            "waiting for a connection or a stream. Where the HTTP/1.1 memory goes (heaptrack, see Findings): hyper "
            "keeps an 8 KB read buffer and an 8 KB write buffer per HTTP/1.1 connection, about 160 MB for 10,000 "
            "connections before any request is handled, and offers no setting that shrinks either below 8 KB; "
            "over HTTP/2 the connection buffers are shared by its streams.")
        add("")
        for protocol in ("http2", "http1"):
            current = [r for r in rows if r["target"] == protocol]
            if not current:
                continue
            peak = max(r["vm_hwm_kib"] for r in current) / 1024
            failed = sum(r["non_2xx"] + r["errors"] for r in current)
            summary.append((f"c. {in_flight:,} in flight, {label[protocol]} clients: all succeed", "0 failed",
                            f"{failed} failed", failed == 0))
            summary.append((f"c. peak RSS, {label[protocol]} clients", "< 256 MiB", f"{peak:.0f} MiB (worst run)",
                            peak < 256))

    # ---- d
    if pick("d"):
        r = pick("d")[0]
        add("## d. The upgrade guide's locustfile")
        add("")
        add("`tests/load/locustfile.py` (the guide's file; audio URLs point at a WAV served by nginx on "
            "loopback, and the service runs with `AUDIO_FETCH_ALLOW_PRIVATE=true`), headless, 200 users "
            "with the guide's `between(1, 3)` think time, which makes about 100 requests/s, against the "
            "simulator at 50 ms. One run (the guide's 2-minute test; the other scenarios give the "
            "spread). Its requests repeat (one WAV, one text), so after the first of each kind they are "
            "cache hits, as the guide's test was written.")
        add("")
        add("| endpoint | requests | failures | req/s | p50 | p95 | p99 |")
        add("|---|---|---|---|---|---|---|")
        for name, s in sorted(r["endpoints"].items()):
            add(f"| {name} | {s['requests']:,} | {s['failures']} | {fmt(s['rps'])} | {fmt(s['p50_ms'], 0)} ms "
                f"| {fmt(s['p95_ms'], 0)} ms | {fmt(s['p99_ms'], 0)} ms |")
        add(f"| **all** | {r['requests']:,} | {r['errors']} | {fmt(r['rps'])} | {fmt(r['p50_ms'], 0)} ms "
            f"| **{fmt(r['p95_ms'], 0)} ms** | {fmt(r['p99_ms'], 0)} ms |")
        add("")
        add(f"Load average at start: {r['load1']:.2f}. Locust reports whole milliseconds.")
        add("")
        summary.append(("d. locust, ~100 req/s: errors", "0", str(r["errors"]), r["errors"] == 0))

    # ---- e
    if pick("e"):
        add("## e. Instructions per request (callgrind)")
        add("")
        add("The service under `valgrind --tool=callgrind`, warmed up, counters zeroed, then "
            "`wrk -t1 -c4` for the run's duration: **hit** posts the same body every time (a "
            "memory-tier hit), **miss** a new text every time (the full path: rate-limit bypassed, "
            "single-flight lease, cache lookups and writes in Redis, the Gemini call to the "
            "simulator at 0 ms, parsing). Instructions counted over that window divided by the "
            "requests served. Instruction counts do not depend on the machine's other load, unlike "
            "wall-clock figures; they include the runtime's own idle work during the window.")
        add("")
        add("| request | build | requests | instructions | **instructions per request** |")
        add("|---|---|---|---|---|")
        per = {}
        for r in pick("e"):
            kind = r.get("kind", "hit")
            per[(kind, r["target"])] = r["instructions"] / max(r["requests"], 1)
            name = "this build" if r["target"] == "service" else "before the fixes"
            add(f"| {kind} | {name} | {r['requests']:,} | {r['instructions']:,} | **{per[(kind, r['target'])]:,.0f}** |")
        add("")
        for kind in ("hit", "miss"):
            if (kind, "service") in per and (kind, "service-before") in per:
                change = 100.0 * (per[(kind, "service")] / per[(kind, "service-before")] - 1)
                add(f"- {kind}: **{change:+.1f} %** instructions per request after the fixes.")
        add("")
        add("Hottest functions: `bench/out/callgrind-<hit|miss>-<build>-self.txt` and `-inclusive.txt`; "
            "raw profiles `bench/out/callgrind-*.out` (open with `callgrind_annotate` or KCachegrind).")
        add("")

    # ---- f
    if pick("f"):
        add("## f. Normalising recordings (one core)")
        add("")
        add("`cargo bench --bench audio` pinned to one core (`taskset -c 1`): the whole normaliser "
            "(detection, demuxing, and either re-packaging as Ogg/Opus or decoding, down-mixing and "
            "resampling to a 16 kHz WAV) on the 30 s fixtures in `tests/fixtures/audio` "
            "(`bench-30s-*`). Median of criterion's samples, its 95 % interval in brackets.")
        add("")
        add("| recording | audio | median | | **x real time** |")
        add("|---|---|---|---|---|")
        for r in pick("f"):
            factor = r["audio_s"] * 1000.0 / r["median_ms"] if r["median_ms"] else 0.0
            add(f"| {r['target']} | {r['audio_s']:.1f} s | {r['median_ms']:.2f} ms | "
                f"[{r['low_ms']:.2f}, {r['high_ms']:.2f}] | **{factor:,.0f}x** |")
            goal = 1000 if r["target"].startswith("remux") else 100
            summary.append((f"f. {r['target']}: x real time, one core", f">= {goal}x", f"{factor:,.0f}x", factor >= goal))
        add("")

    add("## Summary against the goals")
    add("")
    add("| goal | target | measured | |")
    add("|---|---|---|---|")
    for name, target, measured, ok in summary:
        add(f"| {name} | {target} | {measured} | {verdict(ok)} |")
    add("")

    notes = Path(__file__).with_name("FINDINGS.md")
    if notes.exists():
        add(notes.read_text().strip())
        add("")

    add("## Exact commands")
    add("")
    add("Ports are free loopback ports picked per run; temporary paths differ per run.")
    add("")
    add("```")
    if os.environ.get("BENCH_BEFORE_BIN"):
        before = os.environ.get("BENCH_BEFORE_COMMIT", "the commit before the fixes")
        add(f"# the before-the-fixes build: {before} built with `cargo build --release`, copied aside")
        add("BENCH_BEFORE_BIN=<that binary> bash bench/run.sh   # everything below, then this file")
    else:
        add("bash bench/run.sh            # everything below, then this file")
    for label, command in commands.items():
        add(f"# {label}")
        add(command)
    add("```")
    add("")
    add("Service environment (all scenarios): `BIND_ADDRESS=127.0.0.1 CACHE_MODE=redis_only "
        "REDIS_URL=<private redis-server> AZURE_SPEECH_KEY=bench AZURE_SPEECH_ENDPOINT=<simulator> "
        "GEMINI_API_KEY=bench GEMINI_BASE_URL=<simulator> UPSTREAM_HTTP2_PRIOR_KNOWLEDGE=true LOG_FORMAT=json` (one JSON access-log line per "
        "request, to a file, as in production), plus per scenario: a `RATE_LIMIT_PER_MINUTE=10000000`; "
        "b, c, e `RATE_LIMIT_PER_MINUTE=0`; d `RATE_LIMIT_PER_MINUTE=1000000 AUDIO_FETCH_ALLOW_PRIVATE=true`. "
        "Simulator: `SIMULATOR_LATENCY_MS=50 backend-ai simulator PORT` (c: 2000; e: 0).")
    add("")
    add("## Every run")
    add("")
    add("| scenario | target | rate | run | requests | req/s | p50 ms | p99 ms | failed | load avg |")
    add("|---|---|---|---|---|---|---|---|---|---|")
    for r in records:
        target = r["target"] + (f" ({r['kind']})" if r.get("kind") else "")
        add(f"| {r['scenario']} | {target} | {r['rate'] or '-'} | {r['run']} | {r['requests']:,} | {fmt(r['rps'], 0)} "
            f"| {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | {r.get('non_2xx', 0) + r['errors']} | {r['load1']:.2f} |")
    add("")
    Path(report_path).write_text("\n".join(lines))


def main():
    command, argv = sys.argv[1], sys.argv[2:]
    if command == "write":
        write(*argv)
        return
    records = {"oha-record": oha_record, "wrk-record": wrk_record, "locust-record": locust_record,
               "criterion-record": criterion_record}
    print(json.dumps(records[command](argv)))


if __name__ == "__main__":
    main()
