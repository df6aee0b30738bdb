"""Test servers that answer as real servers do: one profile per LMDeploy era and the gateway.

The shapes come from the research notes in ``tests/servers/README.md``; the code is ours.
"""
