"""python -m tests.sandbox start|stop|status|serve — see tests/sandbox/README.md."""

from __future__ import annotations

import argparse
import json
import sys

from .config import SandboxConfig
from .lifecycle import SandboxError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sandbox", description="local AWS sandbox (moto + OCI registries)")
    parser.add_argument("command", choices=["start", "stop", "status", "serve"])
    parser.add_argument("--dir", help="sandbox directory (default: .sandbox, or $SANDBOX_DIR)")
    parser.add_argument("--base-port", type=int, help="first port (default: 25000, or $SANDBOX_BASE_PORT)")
    parser.add_argument("--profile", default="small", choices=["small", "large", "none"], help="catalog to seed on start")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    config = SandboxConfig.from_env(args.dir, args.base_port)

    if args.command == "serve":
        from .server import serve

        serve(config, verbose=args.verbose)
        return 0

    from . import lifecycle

    try:
        if args.command == "start":
            lifecycle.start(config, args.profile)
            print(f"sandbox: ready; `source {config.env_file}` to use it")
        elif args.command == "stop":
            print("sandbox: stopped" if lifecycle.stop(config) else "sandbox: not running")
        else:
            pid = lifecycle.running_pid(config)
            if not pid:
                print("sandbox: not running")
                return 3
            status, report = lifecycle.health(config)
            print(json.dumps(report, indent=2))
            return 0 if status == 200 else 1
    except SandboxError as exc:
        print(f"sandbox: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
