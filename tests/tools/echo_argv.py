#!/usr/bin/env -S python3 -S
# -S: the standard library is all it needs; without site (and its .pth files) it starts 4x as fast.
"""Test tool: appends its argv to ./ran.log (the marker that it ran) and prints, as JSON, its
argv, its stdin and its working directory."""
import json
import os
import sys

data = sys.stdin.read()
with open("ran.log", "a", encoding="utf-8") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")
sys.stdout.write(json.dumps({"argv": sys.argv[1:], "stdin": data, "cwd": os.getcwd()}) + "\n")
