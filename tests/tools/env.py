#!/usr/bin/env -S python3 -S
# -S: the standard library is all it needs; without site (and its .pth files) it starts 4x as fast.
"""Test tool: prints its environment as JSON."""
import json
import os

print(json.dumps(dict(os.environ)))
