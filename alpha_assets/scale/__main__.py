"""`python -m alpha_assets.scale up`: the scale-out profile on this machine until Ctrl-C (`make scale`)."""

from __future__ import annotations

import argparse
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from alpha_assets.paths import data_root
from alpha_assets.scale import settings as S


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alpha_assets.scale", description=__doc__)
    parser.add_argument("command", choices=["up"])
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (default 2)")
    parser.add_argument("--port", type=int, default=3000, help="webserver port (default 3000)")
    parser.add_argument("--visibility-timeout", type=int, default=900,
                        help="seconds before a step whose worker died is delivered again (default 900)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs after Ctrl-C")
    args = parser.parse_args(argv)

    from alpha_assets.scale.stack import ScaleStack, StackOptions

    root = Path(tempfile.mkdtemp(prefix="alpha-scale-"))
    options = StackOptions(root=root, data_root=data_root(), workers=args.workers, webserver_port=args.port,
                           visibility_timeout_s=args.visibility_timeout)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = ScaleStack(options)
    print(f"starting Postgres, Redis, code server, webserver, daemon and {args.workers} Celery workers "
          f"(logs: {stack.logs}) …", flush=True)
    with stack:
        env = stack.env
        names = [S.DEPLOYMENT, S.DATA_ROOT, S.DAGSTER_STORAGE, S.CELERY_BROKER, S.CELERY_BACKEND,
                 S.CELERY_VISIBILITY_TIMEOUT, S.CODE_SERVER_HOST, S.CODE_SERVER_PORT,
                 S.PG_HOST, S.PG_PORT, S.PG_USER, S.PG_PASSWORD, S.PG_DB, "DAGSTER_HOME"]
        print(f"\nUI: {stack.webserver_url}   (runs queue for dagster-daemon; steps run on the Celery workers)")
        print("To talk to this instance from another shell:")
        for name in names:
            print(f"  export {name}={env[name]}")
        print("\nCtrl-C stops everything (the Postgres cluster and Redis data are thrown away).", flush=True)
        stop.wait()
        print("stopping …", flush=True)
    if stack.leftovers:
        print(f"killed {len(stack.leftovers)} process(es) that outlived their server: {stack.leftovers}")
    if args.keep_logs:
        print(f"logs: {stack.logs}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
