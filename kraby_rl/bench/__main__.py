"""``python -m kraby_rl.bench {sim,bus,pubsub,timer,estop,loop,her,train}``: figures, last line
JSON."""

import argparse
import json
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m kraby_rl.bench")
    p.add_argument("name", choices=["sim", "bus", "pubsub", "timer", "estop", "loop", "her",
                                    "train"],
                   help="benchmark to run")
    p.add_argument("--seconds", type=float, default=5.0,
                   help="measuring time per contestant per round [s]")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    p.add_argument("--cycles", type=int, default=500, help="bus: control cycles timed")
    p.add_argument("--baud", type=int, default=500_000, help="bus: bit/s")
    p.add_argument("--latency-us", type=float, default=100.0,
                   help="bus: servo response latency [us]")
    p.add_argument("--transport", choices=["pty", "tcp"], default="pty", help="bus: link")
    p.add_argument("--messages", type=int, default=2000, help="pubsub: messages sent")
    p.add_argument("--trials", type=int, default=30, help="estop: stops measured")
    p.add_argument("--rate", type=float, default=None,
                   help="pubsub: publish rate (default 200 Hz); timer: rate (default 50 Hz)")
    p.add_argument("--steps", type=int, default=40_000,
                   help="her, train: training steps of each contestant")
    p.add_argument("--n-envs", type=int, default=2, help="train: envs / env runners")
    p.add_argument("--goals", type=int, default=100, help="her: evaluation goals")
    p.add_argument("--load", type=int, default=0, metavar="N",
                   help="bus, estop, loop: run N CPU-burning processes during the measurement")
    args = p.parse_args(argv)
    if args.load < 0:
        p.error(f"--load: expected a number of hog processes >= 0, found {args.load}")
    if args.load and args.name not in ("bus", "estop", "loop"):
        p.error(f"--load applies to bus, estop and loop, not {args.name}")
    from kraby_rl.bench.load import cpu_load
    with cpu_load(args.load):
        result = _run(args, argv)
    result["load_processes"] = args.load
    print(json.dumps(result))
    return 0


def _run(args, argv):
    loaded = f" with {args.load} CPU hogs" if args.load else ", machine otherwise idle"
    if args.name == "sim":
        from kraby_rl.bench.sim import run
        result = run(args.seconds, args.rounds)
    elif args.name == "bus":
        from kraby_rl.bench.bus import run
        result = run(args.cycles, args.baud, args.latency_us, args.transport)
        print(f"full cycle (S_JOG + position/velocity of 18 servos), {result['cycles']} "
              f"cycles over a {args.transport} at {args.baud} baud, {args.latency_us:g} us "
              f"latency: mean {result['mean_ms']} ms, p99 {result['p99_ms']} ms; wire floor "
              f"{result['floor_ms']} ms ({result['bytes_per_cycle']:.0f} bytes), ratio "
              f"{result['ratio']}; driver CPU {result['driver_cpu_ms_per_cycle']} ms per "
              f"cycle; {result['invalid_reads']} invalid reads{loaded}; priority "
              f"{result['priority']}")
        print(f"side by side, a bare client (write/poll/read, no checks): mean "
              f"{result['reference_mean_ms']} ms, ratio {result['reference_ratio']}, CPU "
              f"{result['reference_cpu_ms_per_cycle']} ms per cycle; driver / bare: time "
              f"{result['driver_vs_reference_time']}x, CPU {result['driver_vs_reference_cpu']}x")
    elif args.name == "pubsub":
        from kraby_rl.bench.ros import run_pubsub
        result = run_pubsub(args.messages, args.rate or 200.0)
        print(f"18-joint JointState ({result['bytes_per_message']} bytes) between two "
              f"processes on loopback at {result['rate_hz']:g} Hz: received "
              f"{result['messages_received']}/{result['messages_sent']}, one-way latency "
              f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms")
    elif args.name == "timer":
        from kraby_rl.bench.ros import run_timer
        seconds = args.seconds if "--seconds" in (argv or sys.argv) else 10.0
        result = run_timer(seconds, args.rate or 50.0)
        print(f"{result['rate_hz']:g} Hz timer over {result['seconds']:g} s: {result['calls']} "
              f"calls, mean period {result['mean_period_ms']} ms (error "
              f"{result['mean_period_error_pct']} %), jitter p99 {result['p99_jitter_ms']} ms, "
              f"max {result['max_jitter_ms']} ms")
    elif args.name == "estop":
        from kraby_rl.bench.estop import run as run_estop
        result = run_estop(args.trials)
        print(f"emergency_stop published in another process -> brake packet on the virtual "
              f"bus (servo_driver at 50 Hz, 500 kbaud): {result['braked']}/{result['trials']} "
              f"braked, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, max "
              f"{result['max_ms']} ms{loaded}")
    elif args.name == "loop":
        from kraby_rl.bench.loop import run as run_loop
        seconds = args.seconds if "--seconds" in (argv or sys.argv) else 10.0
        result = run_loop(seconds)
        print(f"real stack over the virtual bus (500 kbaud, PyBullet), {result['seconds']:g} s: "
              f"joint_states at {result['rate_hz']} Hz (target 50), interval p50 "
              f"{result['interval_p50_ms']} ms, p99 {result['interval_p99_ms']} ms; driver "
              f"cycle p99 {result['driver_cycle_p99_ms']} ms (target < 20), overruns "
              f"{result['driver_overruns']} in {result['driver_cycles']} cycles{loaded}")
    elif args.name == "train":
        from kraby_rl.bench.train import run as run_train
        result = run_train(args.steps, args.n_envs)
    elif args.name == "her":
        from kraby_rl.bench.her import run as run_her
        result = run_her(args.steps, args.goals)
        print(f"{'contestant':10s} {'env':24s} {'steps':>6s} {'train s':>8s} "
              f"{'success':>8s} {'mean mm':>8s} {'worst mm':>9s}")
        for r in result["results"]:
            print(f"{r['contestant']:10s} {r['env_id']:24s} {r['steps']:6d} "
                  f"{r['train_s']:8.1f} {100 * r['success_rate']:7.1f}% "
                  f"{r['final_distance_mm']:8.1f} {r['worst_distance_mm']:9.1f}")
    return result


if __name__ == "__main__":
    sys.exit(main())
