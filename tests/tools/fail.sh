#!/bin/sh
# Test tool: some output, a complaint on stderr, exit 3.
echo partial
echo "bad thing happened" >&2
exit 3
