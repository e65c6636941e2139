"""One headless load-test run with its report: locust (local, ``--processes`` or an explicit
master and ``--workers``), then ``report.py``. Exit code: locust's (see ``lt_hooks``).

    python loadtests/run.py --host http://127.0.0.1:8080 --scenario mixed -u 50 -r 10 -t 2m
    python loadtests/run.py ... --workers 2          # 1 master + 2 worker processes
    python loadtests/run.py ... --processes 4        # locust forks 4 workers itself
    python loadtests/run.py ... --mint 200           # tokens signed with $PARLEY_JWT_SECRET

Reports: ``loadtests/reports/<timestamp>-<scenario>/`` (or ``--out``): ``locust_*.csv``
(with ``--csv-full-history``), ``report.html``, ``locust_parley.json``, ``summary.md`` and
its PNGs, ``locust.log``. Run it with the load-test venv's python (``loadtests/venv.sh``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCENARIOS = {
    "chatty": ["ChattyUser"],
    "fanout": ["FanoutUser"],
    "storm": ["StormUser"],
    "history": ["HistoryUser"],
    "presence": ["PresenceUser"],
    "api": ["ChattyUser", "ApiPublisherUser"],  # needs PARLEY_LT_API_KEY
    "mixed": [],  # every class, by weight
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--host", default=os.environ.get("HOST", "http://127.0.0.1:8000"))
    p.add_argument("--scenario", choices=sorted(SCENARIOS), default="mixed")
    p.add_argument("-u", "--users", type=int, default=20)
    p.add_argument("-r", "--spawn-rate", type=float, default=10)
    p.add_argument("-t", "--run-time", default="60s")
    p.add_argument("--out", help="report folder (default loadtests/reports/<timestamp>-<scenario>)")
    p.add_argument("--processes", type=int, default=0, help="locust --processes N")
    p.add_argument("--workers", type=int, default=0, help="explicit master + N --worker processes")
    p.add_argument("--master-port", type=int, default=5557, help="with --workers / --processes")
    p.add_argument("--mint", type=int, default=0, help="mint N tokens with $PARLEY_JWT_SECRET")
    p.add_argument("--stop-timeout", default="5")
    p.add_argument("locust_args", nargs="*", help="passed to locust after --")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.scenario == "api" and not os.environ.get("PARLEY_LT_API_KEY"):
        sys.exit("--scenario api needs PARLEY_LT_API_KEY (a Server API key with publish)")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or HERE / "reports" / f"{stamp}-{args.scenario}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    workers = args.workers or args.processes
    if workers:
        env["PARLEY_LT_WORKERS"] = str(workers)
    if args.mint:
        secret = env.get("PARLEY_JWT_SECRET", "")
        if len(secret.encode()) < 32:
            sys.exit("--mint needs PARLEY_JWT_SECRET (at least 32 bytes)")
        sys.path.insert(0, str(HERE))
        from tokens import mint

        tokens = out / "tokens.txt"
        minted = mint(
            args.mint,
            secret,
            "lt" + stamp[-6:],
            86400,
            env.get("PARLEY_JWT_AUDIENCE", ""),
            env.get("PARLEY_JWT_ISSUER", ""),
        )
        tokens.write_text("".join(t + "\n" for t in minted))
        env["PARLEY_LT_TOKENS_FILE"] = str(tokens)
    prefix = str(out / "locust")
    base = [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py")]
    master = [
        *base,
        "--headless",
        "--host",
        args.host,
        "-u",
        str(args.users),
        "-r",
        str(args.spawn_rate),
        "-t",
        args.run_time,
        "--stop-timeout",
        args.stop_timeout,
        "--csv",
        prefix,
        "--csv-full-history",
        "--html",
        str(out / "report.html"),
        "--only-summary",
        "--logfile",
        str(out / "locust.log"),
        *SCENARIOS[args.scenario],
        *args.locust_args,
    ]
    worker_procs: list[subprocess.Popen] = []
    bind = ["--master-bind-host", "127.0.0.1", "--master-bind-port", str(args.master_port)]
    if args.processes:
        # the forked workers dial --master-host/--master-port; the master listens on bind
        port = ["--master-host", "127.0.0.1", "--master-port", str(args.master_port)]
        master += ["--processes", str(args.processes), *bind, *port]
    elif args.workers:
        master += [
            "--master",
            *bind,
            "--expect-workers",
            str(args.workers),
            "--expect-workers-max-wait",
            "60",
        ]
        for i in range(args.workers):
            log = open(out / f"worker-{i}.log", "wb")  # noqa: SIM115 - closed with the process
            worker_procs.append(
                subprocess.Popen(
                    [
                        *base,
                        "--worker",
                        "--master-host",
                        "127.0.0.1",
                        "--master-port",
                        str(args.master_port),
                        *SCENARIOS[args.scenario],
                    ],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    print("running:", " ".join(master), flush=True)
    try:
        code = subprocess.run(master, env=env).returncode
    finally:
        for w in worker_procs:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
    report = subprocess.run([sys.executable, str(HERE / "report.py"), str(out)], env=env)
    if report.returncode != 0:
        print("report.py failed", file=sys.stderr)
        code = code or 4
    print(f"report: {out}/summary.md  (exit code {code})", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
