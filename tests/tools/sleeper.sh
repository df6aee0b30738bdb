#!/bin/sh
# Test tool: starts a child that sleeps (its pid in ./child.pid), then sleeps itself.
sleep 30 &
echo $! > child.pid
echo started
sleep 30
