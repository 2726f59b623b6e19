"""Test helpers: emulator processes, free ports, tokens."""
