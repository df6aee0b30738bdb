#!/bin/sh
# Test tool: prints its working directory, then echoes its stdin.
pwd -P
cat
