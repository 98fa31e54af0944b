#!/usr/bin/env python3
"""The Python alternative to `ptt-audit audit`, as an admin would write it with wxc_sdk.

Reads virtual-line IDs from a file (one per line, `#` comments and blanks skipped),
reads each line's Push-to-Talk settings with
`api.telephony.virtual_lines.push_to_talk.read(id)` from a thread pool, applies the
baseline's three access checks, and writes one CSV row per line. The e2e benchmark
(`cargo bench --bench e2e`) runs it against the simulator to compare CPU and wall time
with ptt-audit at the same concurrency.

    pip install wxc-sdk
    WEBEX_TOKEN=... python3 benches/wxc_sdk_audit.py --lines ids.txt --out ptt.csv \
        [--base-url http://127.0.0.1:PORT/v1] [--concurrency 8]
"""

import argparse
import csv
import os
import sys
from concurrent.futures import ThreadPoolExecutor

from wxc_sdk import WebexSimpleApi
from wxc_sdk.rest import RestError


def findings(settings):
    """The baseline pack's access rules, as a script would hard-code them."""
    auto = bool(settings.allow_auto_answer)
    two_way = settings.connection_type == "TWO_WAY"
    allow = settings.access_type == "ALLOW_MEMBERS"
    failed = []
    if auto and two_way and not allow:
        failed.append("PTT-AUTO-ANSWER-TWO-WAY-BLOCK")
    if two_way and not allow:
        failed.append("PTT-TWO-WAY-ALLOW-LIST")
    if auto and not allow:
        failed.append("PTT-AUTO-ANSWER-ALLOW-LIST")
    return failed


def text(value):
    """An enum field as its API spelling (wxc_sdk models may hold enums or plain str)."""
    if value is None:
        return ""
    return getattr(value, "value", value)


def member_label(m):
    name = getattr(m, "display_name", None)
    email = getattr(m, "email", None)
    if name and email:
        return f"{name} <{email}>"
    return name or email or getattr(m, "member_id", None) or str(m)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", required=True, help="file of virtual-line IDs")
    p.add_argument("--out", required=True, help="CSV to write")
    p.add_argument("--base-url", default=os.environ.get("WEBEX_BASE_URL"))
    p.add_argument("--concurrency", type=int, default=8)
    args = p.parse_args()

    token = os.environ.get("WEBEX_TOKEN")
    if not token:
        sys.exit("set WEBEX_TOKEN")
    with open(args.lines, encoding="utf-8") as f:
        ids = [s.strip() for s in f if s.strip() and not s.lstrip().startswith("#")]

    api = WebexSimpleApi(tokens=token, concurrent_requests=args.concurrency)
    if args.base_url:
        # RestSession.ep() builds every URL from the BASE class attribute; an instance
        # attribute overrides it for this session only.
        api.session.BASE = args.base_url.rstrip("/")
    ptt = api.telephony.virtual_lines.push_to_talk

    def audit(line_id):
        try:
            s = ptt.read(line_id)
        except RestError as e:
            return [line_id, "error", "", "", "", 0, "", "", f"HTTP {e.response.status_code}: {e}"]
        except Exception as e:  # noqa: BLE001 -- a script keeps going on any failure
            return [line_id, "error", "", "", "", 0, "", "", str(e)]
        failed = findings(s)
        members = s.members or []
        return [
            line_id,
            "non_compliant" if failed else "compliant",
            s.allow_auto_answer,
            text(s.connection_type),
            text(s.access_type),
            len(members),
            "; ".join(member_label(m) for m in members),
            ";".join(failed),
            "",
        ]

    errors = 0
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["line_id", "status", "allow_auto_answer", "connection_type",
                    "access_type", "member_count", "members", "failed_rules", "error"])
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            for row in pool.map(audit, ids):
                errors += row[1] == "error"
                w.writerow(row)
    print(f"{len(ids)} lines, {errors} errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
