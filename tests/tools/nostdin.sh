#!/bin/sh
# Test tool: never reads its stdin, and takes a while.
touch ran.marker
exec sleep 4
