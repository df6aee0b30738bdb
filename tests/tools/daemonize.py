#!/usr/bin/env -S python3 -S
# -S: the standard library is all it needs; without site (and its .pth files) it starts 4x as fast.
"""Test tool: leaves a sleeper behind that has escaped its process group (fork, setsid, fork
again, stdio closed), writes the sleeper's pid to ./daemon.pid, then exits at once. With the
argument "tree" the sleeper first starts a sleeping child of its own, whose pid goes on the
second line."""
import os
import sys
import time

read_end, write_end = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        pids = [os.getpid()]
        if sys.argv[1:] == ["tree"]:
            child = os.fork()
            if child == 0:
                time.sleep(60)
                os._exit(0)
            pids.append(child)
        with open("daemon.pid", "w") as fh:
            fh.write("\n".join(str(pid) for pid in pids))
        os.write(write_end, b"x")
        time.sleep(60)
    os._exit(0)
os.read(read_end, 1)  # the sleeper is there and its pid written
print("daemon started")
sys.exit(0)
