"""The two trainers, one module per framework, sharing the types in common.py."""
