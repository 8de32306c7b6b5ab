"""The sandbox's start-up failure, reported by the CLI as one line."""

from __future__ import annotations


class SandboxStartError(Exception):
    """The sandbox cannot listen (its port is taken, or not ours to use); safe to print."""
