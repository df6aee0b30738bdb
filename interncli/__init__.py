"""interncli: a command-line client for the Intern ChatAPI."""

__version__ = "0.1.0"
