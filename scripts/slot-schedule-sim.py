#!/usr/bin/env python3
"""How the demo's 100-execution burst schedules on a bounded number of worker slots, with no
runtime overhead: the lower bound of the slowest execution's wall time (README, Performance).

Each execution's transcode ends at 300 ms (plus a stagger per execution); thumbnails (50 ms) and
detect_faces (100 ms) are then scheduled together, publish (80 ms) once both are done. Every
decision takes `latency` ms. Slots are handed to due tasks oldest first (SWF's order for equal
priorities), so the two parallel stages of the executions interleave.

    python3 scripts/slot-schedule-sim.py            # one shared task list of 100 slots
    python3 scripts/slot-schedule-sim.py --slots 200
"""
import argparse
import heapq

DURATIONS = {"thumbnails": 50.0, "detect_faces": 100.0, "publish": 80.0}
TRANSCODE = 300.0


def slowest(executions, slots, stagger, latency):
    """The slowest execution's wall time (ms) and the median one."""
    events = []  # (time, seq, kind, execution, stage)
    seq = 0
    for i in range(executions):
        due = TRANSCODE + i * stagger + latency
        for stage in ("thumbnails", "detect_faces"):
            heapq.heappush(events, (due, seq, "due", i, stage))
            seq += 1
    queue = []  # (due time, seq, execution, stage): oldest first
    free = slots
    done = {}
    walls = {}
    while events:
        t, _, kind, i, stage = heapq.heappop(events)
        if kind == "due":
            heapq.heappush(queue, (t, seq, i, stage))
            seq += 1
        else:
            free += 1
            done.setdefault(i, set()).add(stage)
            if stage == "publish":
                walls[i] = t - i * stagger
            elif done[i] >= {"thumbnails", "detect_faces"}:
                heapq.heappush(events, (t + latency, seq, "due", i, "publish"))
                seq += 1
        while free and queue:
            _, _, j, s = heapq.heappop(queue)
            free -= 1
            heapq.heappush(events, (t + DURATIONS[s], seq, "end", j, s))
            seq += 1
    ordered = sorted(walls.values())
    return ordered[-1], ordered[len(ordered) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--executions", type=int, default=100)
    ap.add_argument("--slots", type=int, default=100)
    args = ap.parse_args()
    print(f"{args.executions} executions, {args.slots} slots; critical path 480 ms")
    for stagger in (0.03, 0.06, 0.1, 0.15, 0.3):
        for latency in (0.0, 5.0, 10.0):
            worst, median = slowest(args.executions, args.slots, stagger, latency)
            print(
                f"stagger {stagger:4.2f} ms, decision {latency:4.1f} ms: "
                f"slowest {worst:5.1f} ms ({worst / 480:.2f}x), median {median:5.1f} ms"
            )


if __name__ == "__main__":
    main()
