"""`omsnode devnet ...`: a local network of N node processes for trying, testing and benchmarking.

up --nodes N --dir DIR [--sample-data]     make keys/genesis, start N nodes, wait for consensus
status --dir DIR [--json]                  index, url, up, height, view, head hash, peers
down --dir DIR                             stop every node
kill --dir DIR --node I                    SIGKILL one node
restart --dir DIR --node I                 start it again
load --dir DIR --orders N [--json]         stock SKUs, send N signed orders, wait for commits
bench --dir DIR --orders N --concurrency C [--batch B] [--rate R] [--profile DIR [--profile-native]] [--json]
                                           the same from C clients: orders/s, latency, CPU and memory per node
demo --dir DIR                             walk a full order-management scenario
chaos --dir DIR --scenario NAME [--seed S] [--seconds T] [--json]
                                           load, inject a fault, heal, check every invariant (a devnet with
                                           test faults is made in DIR if it holds none)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cli.output import ExitCode, fail, print_json


def _devnet(args: argparse.Namespace) -> Any:
    from devnet.network import Devnet

    return Devnet(Path(args.dir))


def cmd_up(args: argparse.Namespace) -> int:
    from devnet.network import Devnet

    if args.nodes < 1:
        return fail("--nodes must be at least 1", ExitCode.USAGE)
    root = Path(args.dir)
    devnet = Devnet(root) if (root / "devnet.json").exists() else Devnet.create(root, args.nodes)
    devnet.start_all()
    devnet.wait_until_up(timeout=args.timeout)
    if args.sample_data:
        from devnet.sample import load_sample_data

        summary = load_sample_data(devnet)
        print(f"sample data: {summary}")
    print(f"devnet {devnet.genesis.chain_id!r} is up with {len(devnet.nodes)} nodes in {devnet.root}:")
    for node in devnet.nodes:
        print(f"  node {node.index}: {node.url}   (API docs: {node.url}/docs)")
    print(f"client keys: {devnet.clients_dir}")
    print(f"try: curl {devnet.nodes[0].url}/v1/status")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    devnet = _devnet(args)
    rows = [devnet.status(node.index) for node in devnet.nodes]
    if args.json:
        print_json(rows)
        return 0
    header = f"{'node':<5} {'url':<24} {'up':<4} {'height':>7} {'view':>5} {'voting':<7} {'mempool':>8}"
    print(f"{header}  {'head hash':<18} peers reachable")
    for row in rows:
        if not row["up"]:
            print(f"{row['index']:<5} {row['url']:<24} NO")
            continue
        reachable = sum(1 for p in row["peers"] if p.get("reachable"))
        print(
            f"{row['index']:<5} {row['url']:<24} {'yes':<4} {row['height']:>7} {row['view']:>5} "
            f"{'yes' if row['voting'] else 'NO':<7} {row['mempool']:>8}  "
            f"{row['head_hash'][:16]:<18} {reachable}/{len(row['peers'])}"
        )
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    devnet = _devnet(args)
    devnet.stop_all()
    print(f"stopped {len(devnet.nodes)} nodes")
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    devnet = _devnet(args)
    devnet.kill(args.node)
    print(f"killed node {args.node} (SIGKILL)")
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    devnet = _devnet(args)
    devnet.kill(args.node)
    devnet.start(args.node)
    devnet.wait_until_up([args.node], timeout=args.timeout)
    print(f"restarted node {args.node}: {devnet.node(args.node).url}")
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    return _run_bench(args, concurrency=1, batch=1, per_request=args.batch)


def cmd_bench(args: argparse.Namespace) -> int:
    return _run_bench(args, concurrency=args.concurrency, batch=args.batch, per_request=args.per_request)


def _run_bench(args: argparse.Namespace, concurrency: int, batch: int, per_request: int) -> int:
    """`load` and `bench`: drive the devnet, print the figures; exit 1 unless every order was committed."""
    from devnet.bench import run_bench

    baskets = None
    if args.baskets:
        from devnet.baskets import read_olist_baskets

        baskets = read_olist_baskets(Path(args.baskets))
    if min(args.orders, concurrency, batch, per_request, 1 if args.sample_every is None else args.sample_every) < 1:
        return fail(
            "--orders, --concurrency, --batch, --per-request and --sample-every must be at least 1", ExitCode.USAGE
        )
    devnet = _devnet(args)
    profiler = None
    if getattr(args, "profile", None):
        from devnet.profile import NodeProfiler

        profiler = NodeProfiler(devnet, Path(args.profile), native=args.profile_native)
        try:
            profiler.start()
        except RuntimeError as exc:
            return fail(str(exc), ExitCode.USAGE)
    try:
        result = run_bench(
            devnet,
            args.orders,
            concurrency=concurrency,
            batch=batch,
            rate=args.rate,
            baskets=baskets,
            per_request=per_request,
            progress=not args.json,
            sample_every=args.sample_every,
        )
        if profiler is not None:
            result["profile"] = profiler.stop(result["committed"])
    finally:
        if profiler is not None:
            profiler.close()
    ok = result["committed"] == args.orders
    if args.json:
        print_json(result)
        return 0 if ok else 1
    latency = result["latency_ms"]
    print(
        f"committed {result['committed']} of {result['orders']} orders in {result['seconds']} s:"
        f" {result['orders_per_s']} orders/s, commit latency p50 {latency['p50']} ms, p95 {latency['p95']} ms,"
        f" p99 {latency['p99']} ms"
    )
    print(
        f"  {result['blocks']} blocks of {result['avg_block_txs']} txs on average; rejected {result['rejected']},"
        f" refused for room and sent again {result['refused']}"
    )
    for node, cpu, rss in zip(result["nodes"], result["cpu_s_per_node"], result["rss_mb_per_node"], strict=True):
        print(
            f"  node {node['index']}: height {node['height']}, head {str(node['head_hash'])[:16]},"
            f" cpu {cpu} s, peak rss {rss} MB"
        )
    for sample in result["rss_mb_samples"]:
        print(
            f"  after {sample['orders']} orders: rss {', '.join(str(mb) for mb in sample['rss_mb'])} MB per node,"
            f" of which mapped files {', '.join(str(mb) for mb in sample['rss_file_mb'])}"
        )
    if profiler is not None:
        from devnet.profile import format_table

        print(format_table(result["profile"]))
    for error in result["errors"]:
        print(f"  error: {error}", file=sys.stderr)
    return 0 if ok else 1


def cmd_check(args: argparse.Namespace) -> int:
    from devnet.check import check_devnet

    report = check_devnet(_devnet(args), blocks=args.blocks)
    if args.json:
        print_json(report.to_json())
    else:
        print(f"heights {report.heights}, views {report.views}, pending {report.pending}")
        print("healthy: one chain, one view, every node voting, nothing pending" if report.is_healthy else "")
        for problem in report.problems:
            print(f"  problem: {problem}")
    return 0 if report.is_healthy else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from devnet.demo import run_devnet_demo

    run_devnet_demo(_devnet(args))
    return 0


def cmd_chaos(args: argparse.Namespace) -> int:
    """Play one fault scenario; print its figures and violations; exit 1 on any violation."""
    from devnet.chaos.runner import run_scenario
    from devnet.chaos.scenarios import DEFAULT_SECONDS, SCENARIOS, SECONDS
    from devnet.chaos.stage import ScenarioError
    from devnet.network import Devnet

    if args.scenario not in SCENARIOS:
        return fail(f"no scenario {args.scenario!r}; there are {', '.join(sorted(SCENARIOS))}", ExitCode.USAGE)
    seconds = DEFAULT_SECONDS.get(args.scenario, SECONDS) if args.seconds is None else args.seconds
    if not 0 < seconds <= 3600:
        return fail("--seconds must be above 0 and at most 3600", ExitCode.USAGE)
    root = Path(args.dir)
    devnet = Devnet(root) if (root / "devnet.json").exists() else Devnet.create(root, 4, test_faults=True)
    say = (lambda text: None) if args.json else (lambda text: print(text, file=sys.stderr))
    try:
        result = run_scenario(devnet, args.scenario, args.seed, seconds, say=say)
    except ScenarioError as exc:
        return fail(str(exc), ExitCode.USAGE)
    if args.json:
        print_json(result.to_json())
    else:
        print_chaos_table([result])
    return 0 if result.ok else 1


def print_chaos_table(results: list[Any]) -> None:
    """One row of figures per scenario result, then each violation."""
    print(
        f"{'scenario':<16} {'seed':>5} {'fault s':>7} {'commits in fault':>16} {'resume s':>8} {'views':>5}"
        f" {'orders acked':>12}  verdict"
    )
    for r in results:
        resume = "-" if r.resume_s is None else f"{r.resume_s:.1f}"
        print(
            f"{r.scenario:<16} {r.seed:>5} {r.seconds:>7g} {_figure(r.commits_during_fault):>16} {resume:>8}"
            f" {_figure(r.view_changes):>5} {r.orders_acknowledged:>12}  {'ok' if r.ok else 'VIOLATED'}"
        )
    for r in results:
        for problem in r.problems:
            print(f"  {r.scenario}: {problem}")


def _figure(value: int | None) -> str:
    return "-" if value is None else str(value)


def _workload_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--orders", type=int, required=True)
    p.add_argument("--rate", type=float, help="offer this many orders per second (default: as fast as taken)")
    p.add_argument("--baskets", help="replay the baskets of an Olist-style order_items.csv instead of synthetic ones")
    p.add_argument(
        "--sample-every", type=int, help="read each node's resident memory every N orders committed (rss_mb_samples)"
    )
    p.add_argument("--json", action="store_true")


def add_parser(sub: Any) -> None:
    devnet = sub.add_parser("devnet", help="run N local nodes: up, status, check, down, kill, restart, load, bench")
    commands = devnet.add_subparsers(dest="devnet_command", required=True)

    def command(name: str, func: Any, text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = commands.add_parser(name, help=text)
        p.add_argument("--dir", required=True, help="devnet folder")
        p.set_defaults(func=func)
        return p

    p = command("up", cmd_up, "make keys and genesis for N validators and start them")
    p.add_argument("--nodes", type=int, default=4)
    p.add_argument("--sample-data", action="store_true", help="load a catalogue, locations and stock")
    p.add_argument("--timeout", type=float, default=60.0)
    p = command("status", cmd_status, "show every node's height, view, head hash and peers")
    p.add_argument("--json", action="store_true")
    p = command("check", cmd_check, "check one chain, one view, every node voting and nothing pending")
    p.add_argument("--blocks", type=int, default=20, help="how many of the last blocks must carry each node's vote")
    p.add_argument("--json", action="store_true")
    command("down", cmd_down, "stop every node")
    p = command("kill", cmd_kill, "kill one node with SIGKILL")
    p.add_argument("--node", type=int, required=True)
    p = command("restart", cmd_restart, "start a node again")
    p.add_argument("--node", type=int, required=True)
    p.add_argument("--timeout", type=float, default=60.0)
    p = command("load", cmd_load, "stock some SKUs and send N client-signed orders over the nodes")
    p.add_argument("--batch", type=int, default=200, help="orders per HTTP request")
    _workload_arguments(p)
    p = command("bench", cmd_bench, "measure orders/s, commit latency, CPU and memory per node under N orders")
    p.add_argument("--concurrency", type=int, default=4, help="client threads sending at once, over the nodes")
    p.add_argument("--batch", type=int, default=1, help="orders per signed tx (more than 1: order.import)")
    p.add_argument("--per-request", type=int, default=50, help="txs per HTTP request")
    p.add_argument("--profile", metavar="DIR", help="profile every node (py-spy, native threads too) into DIR")
    p.add_argument(
        "--profile-native", action="store_true", help="with --profile, sample C frames too (stops each node per sample)"
    )
    _workload_arguments(p)
    command("demo", cmd_demo, "walk the devnet through a full order-management scenario")
    p = command("chaos", cmd_chaos, "run order load through a fault scenario, heal it, and check every invariant")
    p.add_argument("--scenario", required=True, help="kill-primary, kill-replica, restart-all, pause, ...")
    p.add_argument("--seed", type=int, default=1, help="chooses the victims and the mix (default 1)")
    p.add_argument("--seconds", type=float, help="how long the fault lasts (default: the scenario's own)")
    p.add_argument("--json", action="store_true")
