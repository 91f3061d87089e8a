"""``python -m kraby_rl.bench {sim}``."""

import argparse
import json
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m kraby_rl.bench")
    p.add_argument("name", choices=["sim"], help="benchmark to run")
    p.add_argument("--seconds", type=float, default=5.0,
                   help="measuring time per contestant per round [s]")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    args = p.parse_args(argv)
    if args.name == "sim":
        from kraby_rl.bench.sim import run
        result = run(args.seconds, args.rounds)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
