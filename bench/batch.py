"""``chat batch`` and the shared rate budget, measured (not a test: a missed target is printed).

1. Pacing: against a local server that enforces a limit (tests/apiserver.py ``Limited``: at most
   rpm/6 requests in any 10 s, else 429 -20053), ``chat batch --rpm R`` for R = 60, 180, 600:
   the rate the server saw against the limit (target: within 10%), and the requests it refused
   (target: none).
2. Throughput with the budget off (``--rpm 0``) against an unlimited local server, at
   concurrency 1, 4, 16 and 64, beside a bare threaded ``requests`` script that posts the same
   bodies with one session per thread (target: at least 0.8x of it). Both are timed by the
   server: from the first request's arrival to the last's, so start-up is left out of both.
3. The cost of the budget per request: ``Budget.take()`` in-process, with no wait.

    python bench/batch.py            # about two minutes on 2 cores
    python bench/batch.py --quick    # shorter levels, as a smoke check
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.apiserver import APIServer, Limited  # noqa: E402

TOKEN = "bench-token-0123456789"

BARE = r'''
import json, queue, sys, threading
import requests
url, path, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3])
todo = queue.Queue()
for line in open(path):
    if line.strip():
        todo.put(json.loads(line)["body"])
def work():
    session = requests.Session()
    while True:
        try:
            body = todo.get_nowait()
        except queue.Empty:
            return
        reply = session.post(url + "/chat/completions", json=body, headers={"Authorization": "Bearer x"})
        reply.json()
threads = [threading.Thread(target=work) for _ in range(concurrency)]
for t in threads: t.start()
for t in threads: t.join()
'''


def interncli() -> str:
    found = shutil.which("interncli", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if found is None:
        sys.exit("interncli is not installed for this interpreter: pip install -e .")
    return found


def write_input(path: str, count: int) -> None:
    with open(path, "w") as fh:
        for i in range(count):
            fh.write(json.dumps({"custom_id": "r{}".format(i), "method": "POST", "url": "/v1/chat/completions",
                                 "body": {"model": "intern-latest",
                                          "messages": [{"role": "user", "content": "hello {}".format(i)}]}}) + "\n")


def environment(state: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERN")}
    env.update(INTERN_API_KEY=TOKEN, XDG_STATE_HOME=state, INTERNCLI_CONFIG_DIR=os.path.join(state, "config"),
               NO_PROXY="*", PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    return env


def span(api: APIServer) -> Tuple[int, float]:
    """Requests the server saw, and the seconds from the first arrival to the last."""
    arrivals = sorted(r.at for r in api.calls())
    return len(arrivals), (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0


def pacing(exe: str, work: str, seconds: float) -> List[Tuple[int, float, int, bool]]:
    """(rpm, the rate the server saw a minute, refusals, met) per level."""
    results = []
    for rpm in (60, 180, 600):
        count = max(4, int(rpm * seconds / 60))
        source, out = os.path.join(work, "in-{}.jsonl".format(rpm)), os.path.join(work, "out-{}.jsonl".format(rpm))
        write_input(source, count)
        state = tempfile.mkdtemp(dir=work)
        with APIServer() as api:
            limited = Limited(rpm, window=10.0)
            api.add(limited, times=10 ** 6)
            subprocess.run([exe, "-b", api.base_url, "--rpm", str(rpm), "chat", "batch", source, "-o", out,
                            "--concurrency", "8"], env=environment(state), stderr=subprocess.DEVNULL, check=True)
            seen, took = span(api)
        rate = (seen - 1) * 60.0 / took if took else float("nan")
        results.append((rpm, rate, limited.rejected, limited.rejected == 0 and rate >= 0.9 * rpm))
    return results


def throughput(exe: str, work: str, count: int, rounds: int) -> List[Tuple[int, float, float, bool]]:
    """(concurrency, interncli requests/s, bare requests/s, met) per level."""
    source = os.path.join(work, "in-fast.jsonl")
    write_input(source, count)
    results = []
    for concurrency in (1, 4, 16, 64):
        ours: List[float] = []
        bare: List[float] = []
        for _ in range(rounds):  # interleaved, so that drift hits both alike
            state = tempfile.mkdtemp(dir=work)
            out = os.path.join(state, "out.jsonl")
            with APIServer() as api:
                subprocess.run([exe, "-b", api.base_url, "--rpm", "0", "chat", "batch", source, "-o", out,
                                "--concurrency", str(concurrency)], env=environment(state),
                               stderr=subprocess.DEVNULL, check=True)
                seen, took = span(api)
                ours.append((seen - 1) / took)
            with APIServer() as api:
                subprocess.run([sys.executable, "-c", BARE, api.base_url, source, str(concurrency)],
                               env=environment(state), check=True)
                seen, took = span(api)
                bare.append((seen - 1) / took)
        mine, theirs = statistics.median(ours), statistics.median(bare)
        results.append((concurrency, mine, theirs, mine >= 0.8 * theirs))
    return results


def budget_cost(work: str, takes: int) -> Tuple[float, float]:
    """Microseconds per Budget.take() without a wait: the median of five runs, and the fastest."""
    from interncli.ratelimit import Budget

    now = [time.time()]

    def clock() -> float:  # a minute passes between two takes: no take ever waits
        now[0] += 60.0
        return now[0]

    budget = Budget(os.path.join(work, "rate", "default@host.json"), 30, clock=clock, sleep=lambda s: None)
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(takes):
            budget.take()
        runs.append((time.perf_counter() - started) / takes * 1e6)
    return statistics.median(runs), min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="shorter levels, as a smoke check")
    args = parser.parse_args()
    exe = interncli()
    work = tempfile.mkdtemp(prefix="interncli-bench-batch-")
    try:
        print("pacing against a server enforcing the limit (rpm/6 in any 10 s):")
        print("  {:>5}  {:>10}  {:>6}  {:>8}  {}".format("--rpm", "seen/min", "ratio", "refused", "met (>= 0.9x, 0)"))
        for rpm, rate, refused, met in pacing(exe, work, 8.0 if args.quick else 25.0):
            print("  {:>5}  {:>10.1f}  {:>6.3f}  {:>8}  {}".format(rpm, rate, rate / rpm, refused,
                                                                  "yes" if met else "NO"))
        print("throughput with --rpm 0, against a bare threaded requests script:")
        print("  {:>11}  {:>12}  {:>12}  {:>6}  {}".format("concurrency", "interncli/s", "bare/s", "ratio",
                                                          "met (>= 0.8x)"))
        for concurrency, mine, theirs, met in throughput(exe, work, 150 if args.quick else 400,
                                                         1 if args.quick else 3):
            print("  {:>11}  {:>12.1f}  {:>12.1f}  {:>6.2f}  {}".format(concurrency, mine, theirs, mine / theirs,
                                                                       "yes" if met else "NO"))
        median, fastest = budget_cost(work, 500 if args.quick else 2000)
        print("shared budget: {:.1f} us per request (median of 5; fastest {:.1f} us); with --rpm 0: none "
              "(no file touched); target well under 1000 us: {}".format(median, fastest,
                                                                        "yes" if median < 1000 else "NO"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
