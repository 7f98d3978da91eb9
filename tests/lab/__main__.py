"""Run the censorship lab by hand (as root, from the repository root):

    python -m tests.lab up [--dir DIR] [--prefix mxl-dev-] [--json]
        build it, print the namespaces, addresses, resolvers and endpoints, keep it up until
        Ctrl-C / SIGTERM, then tear it down
    python -m tests.lab down [--prefix mxl-]
        remove leftover lab namespaces (and end the processes inside them)
    python -m tests.lab list
        show the lab namespaces that exist

Inside, e.g.: ip netns exec <prefix>vantage curl --interface censor0 http://157.240.0.35/
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.lab.topology import PREFIX_BASE, UPLINKS, Lab, LabError, down, lab_namespaces


def summary(lab: Lab) -> str:
    ns = lab.namespaces
    lines = [f"censorship lab {lab.prefix!r} is up (files in {lab.directory})", ""]
    lines.append("namespaces:")
    lines += [f"  {role:<16} {name}" for role, name in ns.items()]
    lines += ["", "networks (in the vantage namespace; select by source address or interface):"]
    for u in UPLINKS:
        net = lab.networks[u.network]
        lines.append(
            f"  {u.network:<7} source_address={net['source_address']:<11} "
            f"interface={net['interface']:<8} via {u.isp} ({net['gateway']}, also its "
            f"resolver)" + ("" if u.internet_link_up else "  -- link to the internet DOWN")
        )
        hops = ", ".join(f"{k} {router}" for k, router in enumerate(net["routers"], start=1))
        lines.append(
            f"          hops (time-exceeded from): {hops}; services at TTL {net['distance']}"
        )
    lines += ["", "resolvers:"]
    for name, r in lab.resolvers.items():
        if name == "isp":
            continue
        extra = f" server_name={r['server_name']}" if "server_name" in r else ""
        extra += f" url={r['url']}" if "url" in r else ""
        lines.append(f"  {name:<16} {r['type']:<4} {r['address']}:{r['port']}{extra}")
    lines += ["", "endpoints (technique per network: clean / censor / dnsint / dead):"]
    for name, e in lab.endpoints.items():
        expect = " / ".join(e["expect"][n] for n in ("clean", "censor", "dnsint", "dead"))
        where = f"{e['host'] or '-'} {e['address']}:{e['port']} {e['scheme']}"
        lines.append(f"  {name:<17} {where:<42} {expect}")
    lines += [
        "",
        f"trusted CA: {lab.ca_file}",
        f"foreign CA (the interceptor's): {lab.foreign_ca_file}",
        f"private root (cdsi.signal.lab's, Signal-style): {lab.private_root_file}",
        "",
        "try:",
        f"  ip netns exec {lab.vantage} curl --interface censor0 http://157.240.0.35/",
        f"  ip netns exec {lab.vantage} curl --interface clean0 --cacert {lab.ca_file} "
        "--resolve web.whatsapp.lab:443:13.248.0.10 https://web.whatsapp.lab/",
        f"  ip netns exec {ns['isp-censor']} nft list ruleset",
        "",
        "Ctrl-C (or `python -m tests.lab down`) to tear it down.",
    ]
    return "\n".join(lines)


def cmd_up(args: argparse.Namespace) -> int:
    stops = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    with contextlib.ExitStack() as stack:
        if args.dir:
            directory = Path(args.dir)
        else:  # removed at the end, like the lab
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mxl-lab-")))
        lab = stack.enter_context(Lab.start(directory, prefix=args.prefix))
        # Blocked only now: the server processes must not inherit a blocked SIGTERM. From
        # here on a stop signal waits for `sigwait` instead of being lost.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        signal.signal(signal.SIGHUP, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_BLOCK, stops)
        out: Any = json.dumps(lab.facts(), indent=2) if args.json else summary(lab)
        print(out, flush=True)
        signal.sigwait(stops)
        print("tearing down ...", file=sys.stderr, flush=True)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    removed = down(args.prefix)
    print("\n".join(removed) if removed else f"no namespace starts with {args.prefix!r}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    print("\n".join(lab_namespaces(args.prefix)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.lab",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build the lab and keep it up until Ctrl-C")
    up.add_argument("--dir", help="where certificates, specs and logs go (default: a temp dir)")
    up.add_argument("--prefix", help=f"namespace prefix (default: random {PREFIX_BASE}xxxx-)")
    up.add_argument("--json", action="store_true", help="print the facts as JSON")
    up.set_defaults(func=cmd_up)
    for name, func, text in (
        ("down", cmd_down, "remove leftover lab namespaces"),
        ("list", cmd_list, "list lab namespaces"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--prefix", default=PREFIX_BASE, help="only namespaces starting so")
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
