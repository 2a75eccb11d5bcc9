#!/usr/bin/env python3
"""Helper of bench/till_latency.sh (standard library only); see bench/README.md.

Subcommands:

  job      runs one job (the command after `--`) while a till and a POS work on the same replica
           on a fixed schedule, and records every till write and lookup (one CSV row each) and
           a summary (one JSON line appended to --summary)
  known    prints e-mail addresses of Engage contacts in a replica that a later update round
           does not touch (they stay findable through every job)
  receipts prints N valid receipts, one JSON object per line, for `receipt add -`
  report   prints the table of all summaries and the verdict per target

Till write: one whole process `engage-sync --db DB --config CONF receipt add -` with a fresh
receipt on stdin, or, every CONTACT_EVERY-th write, `contact add --email ...`. Lookup: one whole
process `engage-sync --db DB --config CONF lookup --email ADDR`, for an address that must exist
(every LOOKUP_OWN_EVERY-th lookup: the contact the till registered last in this job). Both run
from the job's start on a grid of start times (t0 + k * interval; lookups half an interval
later); a call that overruns its slot delays the next one (a till does not start a second
write while one is waiting), and slots that passed meanwhile are skipped, not made up.
Wall times are whole-process times as seen from here (fork/exec, start-up, work, exit),
measured with time.perf_counter().
"""

import argparse
import csv
import datetime
import json
import math
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time

CONTACT_EVERY = 5  # every 5th till write is a `contact add`
LOOKUP_OWN_EVERY = 4  # every 4th lookup is of the contact the till registered last
SEED_MEMBER_BASE = 10_000_000  # fake-engage's seeded contact n has member number 10,000,000 + n


def receipt(unique, contact, number):
    """A receipt as Engage wants it (docs/engage-api.md 6.1; tests/common/mod.rs `receipt`)."""
    created = datetime.datetime.now().astimezone().replace(microsecond=0).isoformat()
    return {
        "contact": contact,
        "uniqueReceiptId": unique,
        "receiptNumber": str(number),
        "createdDate": created,
        "storeExternalId": "0600",
        "currency": "SEK",
        "totalGrossPrice": 200.0,
        "paymentMethods": [{"type": "Card", "value": 200.0}],
        "items": [
            {"type": "PURCHASE", "quantity": 2, "grossPaidPrice": 200.0, "taxAmount": 40.0,
             "taxPercent": 25.0, "sku": "1", "articleNumber": "2", "articleName": "Socks"}
        ],
    }


def seeded_member(n, seed_members):
    return {"matchKeyType": "memberNumber",
            "matchKey": str(SEED_MEMBER_BASE + n % max(1, seed_members))}


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list (p in 0..100); None when empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def stats(samples):
    walls = sorted(s["wall_ms"] for s in samples)
    return {
        "n": len(samples),
        "failures": sum(1 for s in samples if not s["ok"]),
        "max_ms": walls[-1] if walls else None,
        "p99_ms": percentile(walls, 99),
        "p50_ms": percentile(walls, 50),
    }


# ------------------------------------------------------------------------------------ job


class Recorder:
    """Runs one process per call, records it, and can kill what is still running."""

    def __init__(self, timeout):
        self.timeout = timeout
        self.lock = threading.Lock()
        self.running = set()
        self.samples = []

    def call(self, kind, argv, stdin_bytes, key, t0, scheduled, expect_found=True):
        start = time.perf_counter()
        rc, err = None, b""
        try:
            p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin_bytes is not None else
                                 subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
            with self.lock:
                self.running.add(p)
            try:
                _, err = p.communicate(stdin_bytes, timeout=self.timeout)
                rc = p.returncode
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
                rc = "timeout"
            finally:
                with self.lock:
                    self.running.discard(p)
        except OSError as e:
            rc, err = "spawn-error", str(e).encode()
        end = time.perf_counter()
        ok = rc == 0
        sample = {
            "kind": kind,
            "scheduled_s": round(scheduled - t0, 4),
            "start_s": round(start - t0, 4),
            "lag_ms": round((start - scheduled) * 1000, 2),
            "wall_ms": round((end - start) * 1000, 3),
            "rc": rc,
            "ok": ok,
            "key": key,
            "stderr": "" if ok else err.decode("utf-8", "replace").strip().replace("\n", " | ")[:600],
        }
        with self.lock:
            self.samples.append(sample)
        return sample

    def kill_all(self):
        with self.lock:
            for p in list(self.running):
                try:
                    p.kill()
                except OSError:
                    pass


def loop(stop, t0, offset, interval, step):
    """Calls step(k, scheduled) on the grid t0 + offset + k * interval until stop is set."""
    k = 0
    while not stop.is_set():
        scheduled = t0 + offset + k * interval
        delay = scheduled - time.perf_counter()
        if delay > 0 and stop.wait(delay):
            break
        step(k, scheduled)
        # The next slot that has not started yet (slots missed while this call ran are skipped).
        behind = (time.perf_counter() - t0 - offset) / interval
        k = max(k + 1, math.ceil(behind))


def cmd_job(a):
    base = [a.bin, "--db", a.db, "--config", a.config]
    known = [line.strip() for line in open(a.known, encoding="utf-8") if line.strip()]
    if not known:
        sys.exit("till_latency: no known contacts in %s" % a.known)
    rec = Recorder(a.call_timeout)
    stop = threading.Event()
    registered = []  # e-mail addresses the till registered in this job (contact add exit 0)
    reg_lock = threading.Lock()
    rng = random.Random(a.name)
    job_env = dict(os.environ)
    for kv in a.env:
        k, _, v = kv.partition("=")
        job_env[k] = v

    def till(k, scheduled):
        if k % CONTACT_EVERY == CONTACT_EVERY - 1:
            email = "till-%s-%d@example.com" % (a.name, k)
            argv = base + ["contact", "add", "--email", email, "--first-name", "Till",
                           "--last-name", "Bench%d" % k]
            s = rec.call("contact_add", argv, None, email, t0, scheduled)
            if s["ok"]:
                with reg_lock:
                    registered.append(email)
            return
        with reg_lock:
            own = registered[-1] if registered and k % 2 == 0 else None
        if own:
            contact = {"matchKeyType": "email", "matchKey": own}
        else:
            contact = seeded_member(k, a.seed_members)
        body = receipt("till-%s-%d" % (a.name, k), contact, k)
        rec.call("receipt_add", base + ["receipt", "add", "-"],
                 json.dumps(body).encode(), body["uniqueReceiptId"], t0, scheduled)

    def pos(k, scheduled):
        with reg_lock:
            own = registered[-1] if registered else None
        if own and k % LOOKUP_OWN_EVERY == LOOKUP_OWN_EVERY - 1:
            kind, email = "lookup_till", own
        else:
            kind, email = "lookup", rng.choice(known)
        rec.call(kind, base + ["lookup", "--email", email], None, email, t0, scheduled)

    def terminate(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    job = None
    with open(a.log + ".out", "wb") as out, open(a.log + ".err", "wb") as err:
        try:
            t0 = time.perf_counter()
            wall_start = time.time()
            job = subprocess.Popen(a.cmd, stdout=out, stderr=err, env=job_env)
            threads = [
                threading.Thread(target=loop, args=(stop, t0, 0.0, a.interval, till), daemon=True),
                threading.Thread(target=loop, args=(stop, t0, a.interval / 2, a.interval, pos),
                                 daemon=True),
            ]
            for t in threads:
                t.start()
            job_rc = job.wait()
            job_end = time.perf_counter()
            stop.set()
            for t in threads:
                t.join()
        finally:
            stop.set()
            if job is not None and job.poll() is None:
                job.kill()
                job.wait()
            rec.kill_all()

    samples = sorted(rec.samples, key=lambda s: s["start_s"])
    with open(a.csv, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["job", "kind", "scheduled_s", "start_s", "lag_ms", "wall_ms", "rc", "ok",
                    "key", "stderr"])
        for s in samples:
            w.writerow([a.name, s["kind"], s["scheduled_s"], s["start_s"], s["lag_ms"],
                        s["wall_ms"], s["rc"], int(s["ok"]), s["key"], s["stderr"]])
    till_s = [s for s in samples if s["kind"] in ("receipt_add", "contact_add")]
    look_s = [s for s in samples if s["kind"].startswith("lookup")]
    failures = []
    for s in samples:
        if not s["ok"] and len(failures) < 5:
            failures.append("%s at %.2f s: exit %s after %.0f ms: %s" % (
                s["kind"], s["start_s"], s["rc"], s["wall_ms"], s["stderr"][:300]))
    summary = {
        "job": a.name,
        "label": a.label or a.name,
        "reference": a.reference,
        "cmd": " ".join(a.cmd),
        "job_rc": job_rc,
        "job_ok_rcs": [int(x) for x in a.ok_rc.split(",")],
        "job_wall_s": round(job_end - t0, 3),
        "started_utc": datetime.datetime.fromtimestamp(wall_start, datetime.timezone.utc)
        .strftime("%H:%M:%S"),
        "till": stats(till_s),
        "receipt_add": stats([s for s in till_s if s["kind"] == "receipt_add"]),
        "contact_add": stats([s for s in till_s if s["kind"] == "contact_add"]),
        "till_late": sum(1 for s in till_s if s["lag_ms"] > a.interval * 500),
        "lookup": stats(look_s),
        "lookup_till": stats([s for s in look_s if s["kind"] == "lookup_till"]),
        "failures": failures,
    }
    with open(a.summary, "a", encoding="utf-8") as f:
        f.write(json.dumps(summary) + "\n")
    t, l = summary["till"], summary["lookup"]
    print("   %s: job exit %s in %.2f s; till %d writes, %d failed, max %s ms, p99 %s ms; "
          "lookups %d, %d failed, p99 %s ms" % (
              a.name, job_rc, summary["job_wall_s"], t["n"], t["failures"], fmt(t["max_ms"]),
              fmt(t["p99_ms"]), l["n"], l["failures"], fmt(l["p99_ms"])), file=sys.stderr)


# ---------------------------------------------------------------------------------- known


def cmd_known(a):
    touched = set()
    pat = re.compile(rb"<contactId>\s*([^<\s]+)\s*</contactId>")
    for d in a.exclude_from or []:
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if name.endswith(".xml"):
                with open(os.path.join(d, name), "rb") as f:
                    touched.update(m.group(1).decode().lower() for m in pat.finditer(f.read()))
    # Engage's contacts are rows of the replica's table `contact` (the public view `contacts`
    # may also span the till's contacts, or live on another connection).
    con = sqlite3.connect("file:%s?mode=ro" % a.db, uri=True)
    try:
        rows = con.execute(
            "SELECT contact_id, email FROM contact WHERE contact_id IS NOT NULL "
            "AND email IS NOT NULL ORDER BY random() LIMIT ?", (a.count + len(touched),)
        ).fetchall()
    finally:
        con.close()
    picked = [email for cid, email in rows if cid.lower() not in touched][: a.count]
    if not picked:
        sys.exit("till_latency: no contact with an e-mail address in %s" % a.db)
    for email in picked:
        print(email)


# ------------------------------------------------------------------------------- receipts


def cmd_receipts(a):
    out = sys.stdout
    for i in range(a.count):
        out.write(json.dumps(receipt("%s-%d" % (a.prefix, i),
                                     seeded_member(i, a.seed_members), i)) + "\n")


# --------------------------------------------------------------------------------- report


def fmt(v, digits=1):
    return "-" if v is None else "%.*f" % (digits, v)


def cmd_report(a):
    rows = [json.loads(line) for line in open(a.summary, encoding="utf-8") if line.strip()]
    t_max, t_p99, l_p99 = a.till_max_ms, a.till_p99_ms, a.lookup_p99_ms
    lines = []
    p = lines.append
    head = ("%-12s %7s %4s | %5s %4s %9s %8s %7s %4s | %5s %4s %7s %7s %8s %4s | %s" % (
        "job", "job_s", "rc", "till", "fail", "max_ms", "p99_ms", "p50_ms", "late",
        "look", "fail", "p99_ms", "p50_ms", "max_ms", "own", "verdict"))
    p(head)
    p("-" * len(head))
    measured = [r for r in rows if not r["reference"]]
    for r in rows:
        t, l = r["till"], r["lookup"]
        miss = []
        if t["failures"]:
            miss.append("till-fail")
        if t["max_ms"] is not None and t["max_ms"] > t_max:
            miss.append("max>%g" % t_max)
        if t["p99_ms"] is not None and t["p99_ms"] > t_p99:
            miss.append("p99>%g" % t_p99)
        if l["p99_ms"] is not None and l["p99_ms"] > l_p99:
            miss.append("look-p99>%g" % l_p99)
        if l["failures"]:
            miss.append("look-fail")
        if t["n"] == 0:
            miss.append("no-samples")
        if r["job_rc"] not in r["job_ok_rcs"]:
            miss.append("job-exit-%s" % r["job_rc"])
        verdict = ("ok" if not miss else "MISS " + " ".join(miss))
        if r["reference"]:
            verdict = "(reference) " + verdict
        p("%-12s %7.2f %4s | %5d %4d %9s %8s %7s %4d | %5d %4d %7s %7s %8s %4d | %s" % (
            r["job"], r["job_wall_s"], r["job_rc"], t["n"], t["failures"], fmt(t["max_ms"]),
            fmt(t["p99_ms"]), fmt(t["p50_ms"]), r["till_late"], l["n"], l["failures"],
            fmt(l["p99_ms"]), fmt(l["p50_ms"]), fmt(l["max_ms"]), r["lookup_till"]["n"],
            verdict))
    p("")
    p("columns: job_s, rc = the job's own wall time and exit code; till = till writes started"
      " while the job ran")
    p("(receipt add and contact add), fail = exit code not 0 (or killed after the call timeout);"
      " max/p99/p50 = whole-process")
    p("wall time in ms (nearest rank); late = writes that started more than half an interval"
      " after their slot because the")
    p("previous one was still running; look = lookups, own = of them, lookups of a contact the"
      " till registered in this job.")
    p("")
    p("per till command (max / p99 / p50 ms, failures):")
    for r in rows:
        parts = []
        for kind in ("receipt_add", "contact_add"):
            s = r[kind]
            parts.append("%s %d: %s / %s / %s, %d failed" % (
                kind.replace("_", " "), s["n"], fmt(s["max_ms"]), fmt(s["p99_ms"]),
                fmt(s["p50_ms"]), s["failures"]))
        p("  %-12s %s; %s" % (r["job"], parts[0], parts[1]))
    p("")
    p("jobs (with the first lines of their output):")
    for r in rows:
        p("  %-12s %s  (started %s UTC, %.2f s, exit %s%s)" % (
            r["job"], r["label"], r["started_utc"], r["job_wall_s"], r["job_rc"],
            "" if r["job_rc"] in r["job_ok_rcs"] else ", UNEXPECTED"))
        notes = os.path.join(a.notes_dir or "", r["job"] + ".txt")
        if a.notes_dir and os.path.exists(notes):
            for line in open(notes, encoding="utf-8"):
                if line.strip():
                    p("      " + line.rstrip())
    failures = [(r["job"], f) for r in rows for f in r["failures"]]
    if failures:
        p("")
        p("first failures (up to 5 per job; all in the CSV files):")
        for job, f in failures:
            p("  %-12s %s" % (job, f))
    p("")

    def worst(key_group, field):
        vals = [(r[key_group][field], r["job"]) for r in measured
                if r[key_group][field] is not None]
        return max(vals) if vals else (None, "-")

    def verdict_line(name, ok, detail):
        p("%-4s %s: %s" % ("PASS" if ok else "FAIL", name, detail))

    if not measured:
        p("no job measured")
    else:
        wmax, jmax = worst("till", "max_ms")
        wp99, jp99 = worst("till", "p99_ms")
        fails = sum(r["till"]["failures"] for r in measured)
        lp99, jl = worst("lookup", "p99_ms")
        lfails = sum(r["lookup"]["failures"] for r in measured)
        empty = [r["job"] for r in measured if r["till"]["n"] == 0]
        p("targets, in every job (the reference row does not count):")
        verdict_line("till write longest <= %g ms" % t_max,
                     wmax is not None and wmax <= t_max and not empty,
                     "worst %s ms (%s)%s" % (fmt(wmax), jmax,
                                             "; no till write in: " + " ".join(empty)
                                             if empty else ""))
        verdict_line("till write p99 <= %g ms" % t_p99,
                     wp99 is not None and wp99 <= t_p99 and not empty,
                     "worst %s ms (%s)" % (fmt(wp99), jp99))
        verdict_line("till write failures = 0", fails == 0 and not empty,
                     "%d of %d" % (fails, sum(r["till"]["n"] for r in measured)))
        verdict_line("lookup p99 <= %g ms" % l_p99, lp99 is not None and lp99 <= l_p99,
                     "worst %s ms (%s)" % (fmt(lp99), jl))
        verdict_line("lookup failures = 0 (every address looked up exists)", lfails == 0,
                     "%d of %d" % (lfails, sum(r["lookup"]["n"] for r in measured)))
        bad_jobs = [r["job"] for r in measured if r["job_rc"] not in r["job_ok_rcs"]]
        verdict_line("every job exited as expected", not bad_jobs,
                     "unexpected: " + " ".join(bad_jobs) if bad_jobs else "yes")
        if any(r["till"]["n"] < 100 for r in measured):
            p("(a job with fewer than 100 till writes has its p99 equal to its max: nearest rank)")
    sys.stdout.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd_name", required=True)
    j = sub.add_parser("job")
    j.add_argument("--name", required=True)
    j.add_argument("--label", default="")
    j.add_argument("--reference", action="store_true")
    j.add_argument("--bin", required=True)
    j.add_argument("--db", required=True)
    j.add_argument("--config", required=True)
    j.add_argument("--known", required=True)
    j.add_argument("--interval", type=float, default=0.2)
    j.add_argument("--seed-members", type=int, default=1)
    j.add_argument("--call-timeout", type=float, default=60.0)
    j.add_argument("--csv", required=True)
    j.add_argument("--summary", required=True)
    j.add_argument("--log", required=True, help="prefix of the job's .out and .err files")
    j.add_argument("--env", action="append", default=[], help="KEY=VALUE for the job only")
    j.add_argument("--ok-rc", default="0", help="the job's acceptable exit codes, e.g. 0,75")
    j.add_argument("cmd", nargs="+")
    k = sub.add_parser("known")
    k.add_argument("--db", required=True)
    k.add_argument("--count", type=int, default=200)
    k.add_argument("--exclude-from", action="append")
    r = sub.add_parser("receipts")
    r.add_argument("--count", type=int, required=True)
    r.add_argument("--prefix", required=True)
    r.add_argument("--seed-members", type=int, default=1)
    rep = sub.add_parser("report")
    rep.add_argument("--summary", required=True)
    rep.add_argument("--notes-dir")
    rep.add_argument("--till-max-ms", type=float, default=100)
    rep.add_argument("--till-p99-ms", type=float, default=50)
    rep.add_argument("--lookup-p99-ms", type=float, default=20)
    a = ap.parse_args()
    {"job": cmd_job, "known": cmd_known, "receipts": cmd_receipts, "report": cmd_report}[
        a.cmd_name](a)


if __name__ == "__main__":
    main()
