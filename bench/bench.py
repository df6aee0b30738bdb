#!/usr/bin/env python3
"""Benchmark of interncli against baselines measured in the same run, on this machine.

    python bench/bench.py            # from the repo root; about a minute on 2 cores
    python bench/bench.py --quick    # fewer repetitions, for a smoke check
    python bench/bench.py --json FILE

Prints one table: each row is a figure of interncli, the figure of a baseline measured in the
same run, their ratio, the target ratio and whether it was met. Figures are medians. Nothing
here is a test: a missed target is reported, never asserted (the exit code is 0 either way,
unless the benchmark itself could not run).

Why the children are started through a "launcher": on Linux a child's ru_maxrss includes the
RSS of the process it was forked from (the kernel records the old address space's high-water
mark at exec), so a child of this script would never show less than this script's own RSS
(tens of MiB: the API server, 20,000 pre-built events). The launcher is a tiny `python -S -I`
process that spawns each command, waits for it with os.wait4 and reports its wall time,
user+sys CPU and peak RSS; its own RSS (printed as the "harness floor") is the lowest figure a
child can show.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))
sys.dont_write_bytecode = True  # this script writes nothing outside bench/ (no tests/__pycache__)

from tests.apiserver import APIServer, Stream, stream_chunks  # noqa: E402

OPENAI_VERSION = "2.34.0"
# A token of the shape interncli accepts (it refuses one shorter than 4 characters).
BENCH_TOKEN = "sk-bench-0123456789"
OPENAI_VENV = BENCH_DIR / ".venv-openai"
STREAM_CHUNKS = 20_000
MODEL = "intern-latest"
# Modules that `--version` and `--help` must not import (the network and config stack).
FORBIDDEN = ("requests", "keyring", "yaml")
# Also reported, for information: heavy modules a start-up path has no need for.
WATCHED = FORBIDDEN + ("urllib3", "jsonschema", "http.client", "ssl", "email.utils")

# ------------------------------------------------------------------------------ launcher

LAUNCHER = r"""
import json, os, signal, sys, time
cur = {"pid": 0}
def _expire(signum, frame):
    if cur["pid"]:
        os.kill(cur["pid"], signal.SIGKILL)
signal.signal(signal.SIGALRM, _expire)
W = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
for line in sys.stdin:
    job = json.loads(line)
    actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, job["stdout"] or "/dev/null", W, 0o644),
               (os.POSIX_SPAWN_OPEN, 2, job["stderr"] or "/dev/null", W, 0o644)]
    t0 = time.perf_counter()
    try:
        pid = os.posix_spawn(job["argv"][0], job["argv"], job["env"], file_actions=actions)
    except OSError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        continue
    cur["pid"] = pid
    signal.setitimer(signal.ITIMER_REAL, job["timeout"])
    _, status, ru = os.wait4(pid, 0)
    t1 = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, 0)
    cur["pid"] = 0
    print(json.dumps({"wall": t1 - t0, "user": ru.ru_utime, "sys": ru.ru_stime,
                      "maxrss_kib": ru.ru_maxrss, "exit": os.waitstatus_to_exitcode(status)}), flush=True)
"""


class Launcher:
    """Runs commands one at a time from a small process and returns their rusage."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-S", "-I", "-c", LAUNCHER],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def run(self, argv: Sequence[str], env: Dict[str, str], stdout: Optional[str] = None,
            stderr: Optional[str] = None, timeout: float = 60.0) -> Dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        job = {"argv": list(argv), "env": env, "stdout": stdout, "stderr": stderr, "timeout": timeout}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the launcher died")
        result = json.loads(line)
        if "error" in result:
            raise RuntimeError("cannot start {}: {}".format(argv[0], result["error"]))
        return result

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(10)


# ----------------------------------------------------------------------------- commands


def find_interncli() -> str:
    """The console script installed for this interpreter (not a version-manager shim, whose
    own start-up would be counted: pyenv's is a bash script)."""
    beside = Path(sys.executable).parent / "interncli"
    if beside.is_file():
        return str(beside)
    found = shutil.which("interncli")
    if not found:
        sys.exit("bench: interncli is not installed for {}: run `pip install .` first".format(sys.executable))
    return found


def openai_installed(venv: Path) -> bool:
    return (venv / "bin" / "openai").is_file() and any(
        venv.glob("lib/python*/site-packages/openai-{}.dist-info".format(OPENAI_VERSION)))


def ensure_openai(venv: Path) -> Optional[str]:
    """The openai CLI of the pinned release, installed into a cached venv when missing."""
    if not openai_installed(venv):
        print("bench: installing openai=={} into {} (once) ...".format(OPENAI_VERSION, venv), flush=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                            "--disable-pip-version-check", "openai=={}".format(OPENAI_VERSION)], check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            print("bench: could not install the openai CLI ({}); its rows are skipped".format(exc), flush=True)
            return None
    return str(venv / "bin" / "openai") if openai_installed(venv) else None


def child_env(config_dir: str, pycache: str) -> Dict[str, str]:
    """The environment of every measured command: no proxy (requests and httpx would route
    127.0.0.1 through one), no token or profile from the user, an empty config dir, and
    bytecode cached for every command alike, in a directory of this run
    (PYTHONPYCACHEPREFIX): an installed package has its .pyc files, but an editable install
    run with PYTHONDONTWRITEBYTECODE=1 would recompile interncli on every start, and without
    that variable the children would write __pycache__ directories into the work tree."""
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and not k.startswith(("INTERN_", "OPENAI_"))
           and k not in ("PYTHONPROFILEIMPORTTIME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONDONTWRITEBYTECODE")}
    env.update(NO_PROXY="*", INTERNCLI_CONFIG_DIR=config_dir, NO_COLOR="1", PYTHONPYCACHEPREFIX=pycache)
    return env


FLOOR_REQUEST = """
import sys, click, requests
r = requests.post(sys.argv[1] + "/chat/completions", headers={"Authorization": "Bearer x"},
                  json={"model": "intern-latest", "messages": [{"role": "user", "content": "hi"}]})
print(r.json()["choices"][0]["message"]["content"])
"""

FLOOR_STREAM = """
import json, sys, click, requests
r = requests.post(sys.argv[1] + "/chat/completions", headers={"Authorization": "Bearer x"}, stream=True,
                  json={"model": "intern-latest", "messages": [{"role": "user", "content": "hi"}], "stream": True})
out = sys.stdout
for line in r.iter_lines():
    if line.startswith(b"data: "):
        data = line[6:]
        if data == b"[DONE]":
            break
        out.write(json.loads(data)["choices"][0]["delta"].get("content") or "")
        out.flush()
out.write("\\n")
"""

IMPORT_PROBE = """
import json, sys
args = json.loads(sys.argv[1])
from interncli.cli import main
try:
    main(args)
except SystemExit:
    pass
watched = json.loads(sys.argv[2])
sys.stderr.write("\\nBENCH-MODULES " + json.dumps([m for m in watched if m in sys.modules]) + "\\n")
"""

# ------------------------------------------------------------------------------- helpers


def median(values: List[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Series:
    """Repeated measurements of one command."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.runs: List[Dict[str, Any]] = []
        self.failures = 0

    def add(self, result: Dict[str, Any]) -> None:
        if result["exit"] != 0:
            self.failures += 1
        self.runs.append(result)

    def values(self, key: str) -> List[float]:
        if key == "cpu":
            return [r["user"] + r["sys"] for r in self.runs]
        if key == "rss_mib":
            return [r["maxrss_kib"] / 1024 for r in self.runs]
        return [r[key] for r in self.runs]

    def med(self, key: str) -> float:
        return median(self.values(key))

    def summary(self) -> Dict[str, Any]:
        return {"runs": len(self.runs), "failures": self.failures,
                **{k: {"median": self.med(k), "min": min(self.values(k), default=float("nan")),
                       "max": max(self.values(k), default=float("nan"))} for k in ("wall", "cpu", "rss_mib")}}


def round_robin(launcher: Launcher, commands: Dict[str, List[str]], env: Dict[str, str], rounds: int,
                warmup: int = 1, timeout: float = 60.0, before: Any = None) -> Dict[str, Series]:
    """Run every command ``rounds`` times, interleaved so that drift hits all of them alike."""
    series = {name: Series(name) for name in commands}
    for number in range(warmup + rounds):
        for name, argv in commands.items():
            if before:
                before(name)
            result = launcher.run(argv, env, timeout=timeout)
            if number >= warmup:
                series[name].add(result)
    return series


def capture(launcher: Launcher, argv: List[str], env: Dict[str, str], tmp: str,
            timeout: float = 60.0) -> Dict[str, Any]:
    """One run with stdout and stderr kept, to check that the command did what it should."""
    out, err = os.path.join(tmp, "out.txt"), os.path.join(tmp, "err.txt")
    result = launcher.run(argv, env, stdout=out, stderr=err, timeout=timeout)
    with open(out, encoding="utf-8", errors="replace") as fh:
        result["stdout"] = fh.read()
    with open(err, encoding="utf-8", errors="replace") as fh:
        result["stderr"] = fh.read()
    return result


def check_output(label: str, result: Dict[str, Any], expected: str, problems: List[str]) -> None:
    if result["exit"] != 0 or expected not in result["stdout"]:
        problems.append("{}: exit {}, stdout {!r}..., stderr {!r}".format(
            label, result["exit"], result["stdout"][:80], result["stderr"][-300:]))


def import_times(env: Dict[str, str], argv: List[str], runs: int = 5) -> Dict[str, Dict[str, Any]]:
    """Per module: median self time (us), median cumulative time (us), nesting depth, and the
    modules it imported directly (importtime lists children before their parent)."""
    samples: Dict[str, Dict[str, Any]] = {}
    for _ in range(runs):
        proc = subprocess.run([sys.executable, "-X", "importtime"] + argv, env=env, capture_output=True,
                              text=True, timeout=60)
        pending: Dict[int, List[str]] = {}  # depth -> modules waiting for their parent's line
        for line in proc.stderr.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
            if m:
                depth = (len(m.group(3)) - 1) // 2
                entry = samples.setdefault(m.group(4), {"self": [], "cum": [], "depth": depth, "children": []})
                entry["self"].append(int(m.group(1)))
                entry["cum"].append(int(m.group(2)))
                entry["children"] = pending.pop(depth + 1, [])
                pending.setdefault(depth, []).append(m.group(4))
    return {k: {"self": median(v["self"]), "cum": median(v["cum"]), "depth": v["depth"], "children": v["children"]}
            for k, v in samples.items()}


def install_kind() -> str:
    """How interncli is installed: "editable" (pip install -e) or "regular"."""
    try:
        from importlib import metadata

        paths = [p for p in sys.path if Path(p or ".").resolve() != REPO]  # not the work tree's egg-info
        for dist in metadata.distributions(path=paths):
            if (dist.metadata["Name"] or "").lower() == "interncli":
                direct = dist.read_text("direct_url.json")
                return "editable" if direct and json.loads(direct).get("dir_info", {}).get("editable") else "regular"
        return "unknown"
    except Exception:  # noqa: BLE001 - information only
        return "unknown"


# --------------------------------------------------------------------------------- table


class Table:
    def __init__(self) -> None:
        self.rows: List[Dict[str, Any]] = []

    def add(self, what: str, ours: Optional[float], baseline: str, theirs: Optional[float], unit: str,
            target: Optional[float]) -> None:
        ratio = ours / theirs if ours is not None and theirs else None
        met = None if target is None or ratio is None else ratio <= target
        self.rows.append({"what": what, "interncli": ours, "baseline": baseline, "baseline_figure": theirs,
                          "unit": unit, "ratio": ratio, "target": target, "met": met})

    @staticmethod
    def _fig(value: Optional[float], unit: str) -> str:
        if value is None:
            return "n/a"
        if unit == "ms":
            return "{:.1f} ms".format(value * 1000)
        if unit == "s":
            return "{:.3f} s".format(value)
        if unit == "MiB":
            return "{:.1f} MiB".format(value)
        return "{:g} {}".format(value, unit)

    def render(self) -> str:
        header = ("what", "interncli", "baseline", "baseline fig.", "ratio", "target", "met")
        lines = []
        for r in self.rows:
            lines.append((r["what"], self._fig(r["interncli"], r["unit"]), r["baseline"],
                          self._fig(r["baseline_figure"], r["unit"]),
                          "n/a" if r["ratio"] is None else "{:.2f}x".format(r["ratio"]),
                          "-" if r["target"] is None else "<= {:g}x".format(r["target"]),
                          "info" if r["target"] is None else ("n/a" if r["met"] is None else
                                                              ("yes" if r["met"] else "NO"))))
        widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
        fmt = "  ".join("{:<%d}" % w for w in widths)
        out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
        out += [fmt.format(*line) for line in lines]
        return "\n".join(out)


# ---------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke check)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure as JSON to FILE")
    args = parser.parse_args()
    n_start, n_req, n_stream = (5, 3, 3) if args.quick else (15, 7, 7)

    started = time.perf_counter()
    interncli = find_interncli()
    openai = ensure_openai(OPENAI_VENV)
    table = Table()
    details: Dict[str, Series] = {}
    problems: List[str] = []
    notes: List[str] = []
    launcher = Launcher()
    tmp = tempfile.mkdtemp(prefix="interncli-bench-")
    config_dir = os.path.join(tmp, "config")
    os.mkdir(config_dir)
    env = child_env(config_dir, os.path.join(tmp, "pycache"))
    try:
        floor = launcher.run(["/bin/true"] if os.path.exists("/bin/true") else ["/usr/bin/true"], env)
        floor_mib = floor["maxrss_kib"] / 1024
        print("interpreter: {} (Python {})".format(sys.executable, sys.version.split()[0]))
        print("interncli:   {} ({} install)".format(interncli, install_kind()))
        print("openai CLI:  {}".format(openai or "not available"))
        print("harness peak-RSS floor: {:.1f} MiB (no child can show less)\n".format(floor_mib), flush=True)

        # 1. Start-up ---------------------------------------------------------------------
        print("[1/3] start-up: {} runs each ...".format(n_start), flush=True)
        cmds = {"python -c 'import click'": [sys.executable, "-c", "import click"],
                "interncli --version": [interncli, "--version"],
                "interncli chat create --help": [interncli, "chat", "create", "--help"]}
        res = round_robin(launcher, cmds, env, n_start, warmup=2)
        details.update(res)
        base = res["python -c 'import click'"].med("wall")
        for name in ("interncli --version", "interncli chat create --help"):
            table.add("start-up: " + name.replace("interncli ", ""), res[name].med("wall"),
                      "python -c 'import click'", base, "ms", 1.3)
        v = capture(launcher, [interncli, "--version"], env, tmp)
        check_output("interncli --version", v, "interncli", problems)

        lazy: Dict[str, List[str]] = {}
        for argv in (["--version"], ["--help"], ["chat", "create", "--help"]):
            proc = subprocess.run([sys.executable, "-c", IMPORT_PROBE, json.dumps(argv), json.dumps(WATCHED)],
                                  env=env, capture_output=True, text=True, timeout=60)
            m = re.search(r"BENCH-MODULES (.*)", proc.stderr)
            lazy[" ".join(argv)] = json.loads(m.group(1)) if m else ["<probe failed: {}>".format(proc.stderr[-200:])]

        base_imports = import_times(env, ["-c", "import click"])
        ours_imports = import_times(env, ["-m", "interncli", "--version"])
        help_imports = import_times(env, ["-m", "interncli", "chat", "create", "--help"])

        # 2. One request ------------------------------------------------------------------
        print("[2/3] one non-streamed request: {} runs each ...".format(n_req), flush=True)
        with APIServer() as server:
            url = server.base_url
            cmds = {"interncli": [interncli, "-b", url, "-k", BENCH_TOKEN, "chat", "create", "-g", "user", "hi"],
                    "bare click+requests": [sys.executable, "-c", FLOOR_REQUEST, url]}
            if openai:
                # the openai CLI sets the module-level base_url, which it does not give a
                # trailing slash: without one it would post to /v1chat/completions
                cmds["openai CLI " + OPENAI_VERSION] = [openai, "-b", url + "/", "-k", BENCH_TOKEN, "api",
                                                        "chat.completions.create", "-m", MODEL, "-g", "user", "hi"]
            for name, argv in cmds.items():
                check_output(name + " (request)", capture(launcher, argv, env, tmp), "echo: hi", problems)
            res = round_robin(launcher, cmds, env, n_req, warmup=1)
            details.update({"request: " + k: s for k, s in res.items()})
            ours = res["interncli"]
            oa = res.get("openai CLI " + OPENAI_VERSION)
            bare = res["bare click+requests"]
            table.add("request: wall", ours.med("wall"), "openai CLI " + OPENAI_VERSION,
                      oa.med("wall") if oa else None, "ms", 0.25)
            table.add("request: peak RSS", ours.med("rss_mib"), "openai CLI " + OPENAI_VERSION,
                      oa.med("rss_mib") if oa else None, "MiB", 0.55)
            table.add("request: wall", ours.med("wall"), "bare click+requests", bare.med("wall"), "ms", 1.1)
            table.add("request: peak RSS", ours.med("rss_mib"), "bare click+requests", bare.med("rss_mib"),
                      "MiB", None)
            table.add("request: CPU user+sys", ours.med("cpu"), "bare click+requests", bare.med("cpu"), "ms", None)

        # 3. A long stream ----------------------------------------------------------------
        print("[3/3] {}-chunk stream: {} runs each ...".format(STREAM_CHUNKS, n_stream), flush=True)
        pieces = ["w{} ".format(i % 1000) for i in range(STREAM_CHUNKS - 1)]  # + the finishing chunk
        chunks = stream_chunks(pieces, pending_finish_reason=None)
        assert len(chunks) == STREAM_CHUNKS
        # serialised once: the server then only writes bytes
        events = [b"data: " + json.dumps(c, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
                  for c in chunks]
        expected = "".join(pieces)
        with APIServer() as server:
            url = server.base_url
            cmds = {"interncli": [interncli, "-b", url, "-k", BENCH_TOKEN, "chat", "create", "--stream",
                                  "-g", "user", "hi"],
                    "bare click+requests SSE loop": [sys.executable, "-c", FLOOR_STREAM, url]}
            if openai:
                cmds["openai CLI " + OPENAI_VERSION] = [openai, "-b", url + "/", "-k", BENCH_TOKEN, "api",
                                                        "chat.completions.create", "-m", MODEL, "--stream",
                                                        "-g", "user", "hi"]

            def queue(_name: str) -> None:
                server.reset()
                server.add(Stream(events))

            for name, argv in cmds.items():
                queue(name)
                check_output(name + " (stream)", capture(launcher, argv, env, tmp, timeout=120), expected, problems)
            res = round_robin(launcher, cmds, env, n_stream, warmup=0, timeout=120, before=queue)
            details.update({"stream: " + k: s for k, s in res.items()})
            ours = res["interncli"]
            oa = res.get("openai CLI " + OPENAI_VERSION)
            bare = res["bare click+requests SSE loop"]
            what = "stream {}k: ".format(STREAM_CHUNKS // 1000)
            table.add(what + "CPU user+sys", ours.med("cpu"), "openai CLI " + OPENAI_VERSION,
                      oa.med("cpu") if oa else None, "s", 0.25)
            table.add(what + "wall", ours.med("wall"), "openai CLI " + OPENAI_VERSION,
                      oa.med("wall") if oa else None, "s", None)
            table.add(what + "peak RSS", ours.med("rss_mib"), "openai CLI " + OPENAI_VERSION,
                      oa.med("rss_mib") if oa else None, "MiB", None)
            table.add(what + "CPU user+sys", ours.med("cpu"), "bare click+requests SSE loop", bare.med("cpu"),
                      "s", None)
    finally:
        launcher.close()
        shutil.rmtree(tmp, ignore_errors=True)

    # -------------------------------------------------------------------------------- report
    print()
    print(table.render())
    print()
    print("--help/--version import requests, keyring or yaml?")
    for argv, mods in lazy.items():
        bad = [m for m in mods if m in FORBIDDEN]
        print("  interncli {:<20} {}   (watched modules loaded: {})".format(
            argv, "YES: " + ", ".join(bad) if bad else "no", ", ".join(mods) or "none"))

    for label, imports in (("--version", ours_imports), ("chat create --help", help_imports)):
        extra = {k: v for k, v in imports.items() if k not in base_imports}
        total = sum(v["self"] for v in extra.values()) / 1000
        print("\nimports of `interncli {}` beyond `import click` ({} modules, {:.1f} ms self time, "
              "python -X importtime, median of 5):".format(label, len(extra), total))
        for name, v in sorted(extra.items(), key=lambda kv: -kv[1]["self"])[:10]:
            print("  {:>7.2f} ms self  {:>7.2f} ms cumulative  {}".format(v["self"] / 1000, v["cum"] / 1000, name))

    print("\nper command (min / median / max; n runs):")
    for name, s in details.items():
        print("  {:<45} wall {:>8.1f} /{:>8.1f} /{:>8.1f} ms   cpu {:>8.1f} ms   peak RSS {:>6.1f} MiB   n={}{}".format(
            name, *(x * 1000 for x in (min(s.values("wall")), s.med("wall"), max(s.values("wall")))),
            s.med("cpu") * 1000, s.med("rss_mib"), len(s.runs),
            "  ({} FAILED)".format(s.failures) if s.failures else ""))
    if problems:
        print("\nPROBLEMS (the figures of these commands may not mean what they say):")
        for p in problems:
            print("  " + p)
    site = base_imports.get("site")
    if site:
        heavy = sorted((c for c in site["children"] if base_imports.get(c, {}).get("cum", 0) >= 1000),
                       key=lambda c: -base_imports[c]["cum"])
        notes.append("note: `site` (the site-packages .pth files) takes {:.1f} ms of every start-up here, the "
                     "baseline's included{}; the fewer fixed ms, the larger the start-up ratios".format(
                         site["cum"] / 1000, "" if not heavy else ": " + ", ".join(
                             "{} {:.1f} ms".format(c, base_imports[c]["cum"] / 1000) for c in heavy)))
    for n in notes:
        print("\n" + n)
    print("\nfigures are medians; ratios are interncli / baseline, both measured in this run. "
          "({:.0f} s in all)".format(time.perf_counter() - started))

    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"python": sys.version, "harness_floor_mib": floor_mib, "rows": table.rows,
                       "lazy_imports": lazy, "problems": problems,
                       "commands": {k: s.summary() for k, s in details.items()}}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
