"""Tools for running the platform on this machine: the gateway, tokens, fixtures."""
