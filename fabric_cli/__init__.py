"""fabric: a NumPy transformer that learns to track pronouns, and tells you how it felt."""

__version__ = "0.1.0"
