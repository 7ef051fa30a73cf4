"""cityloop: open-source closed-loop urban management."""

__version__ = "0.1.0"
