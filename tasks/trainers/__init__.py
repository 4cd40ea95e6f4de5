"""The built-in trainers, one module per framework, sharing common.py (specs: trainers.py)."""
