#!/usr/bin/env python3
"""Test tool: 10 MiB of 'x' on stdout."""
import sys

block = b"x" * 65536
for _ in range(160):
    sys.stdout.buffer.write(block)
