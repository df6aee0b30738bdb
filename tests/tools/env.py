#!/usr/bin/env python3
"""Test tool: prints its environment as JSON."""
import json
import os

print(json.dumps(dict(os.environ)))
