#!/usr/bin/env -S python3 -S
# -S: the standard library is all it needs; without site (and its .pth files) it starts 4x as fast.
"""Test tool: 10 MiB of 'x' on stdout."""
import sys

block = b"x" * 65536
for _ in range(160):
    sys.stdout.buffer.write(block)
