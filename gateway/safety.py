"""Loud warnings about a config that runs but is unsafe: example secrets, open listeners.

`check-config` prints them and `run` logs them at WARNING at every start, so an example token
copied into a real install is seen by whoever reads either.
"""

from __future__ import annotations

import ipaddress

from gateway.config import GatewayConfig, hash_token

# Secrets that appear in the project's examples, docs and tests: anyone can read them.
EXAMPLE_TOKENS = ("change-me-operator", "change-me-bureau", "change-me-admin", "change-me")
EXAMPLE_PASSWORDS = frozenset({"change-me", "changeme", "password", "admin", "gateway", "123456", "12345678"})
_EXAMPLE_TOKEN_HASHES = {hash_token(token): token for token in EXAMPLE_TOKENS}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def config_warnings(config: GatewayConfig) -> list[str]:
    """What an admin must fix before the gateway faces a school network, one sentence each."""
    warnings = []
    for token in config.api.tokens:
        if token.sha256 in _EXAMPLE_TOKEN_HASHES:
            warnings.append(
                f"api.tokens: {token.name!r} ({token.role}) uses the example token "
                f"{_EXAMPLE_TOKEN_HASHES[token.sha256]!r}, which anyone can read; "
                "make a new one with `campus-gateway hash-token` or `campus-gateway init`"
            )
    broker = config.broker
    if broker.password is not None and broker.password in EXAMPLE_PASSWORDS:
        warnings.append(
            f"broker.password is the example password {broker.password!r}; set the one in the broker's "
            "password file (`campus-gateway init` writes both)"
        )
    if broker.username is None or broker.password is None:
        warnings.append(
            "broker: no username/password, so the broker lets clients in without one and any of them "
            "can publish alarms; use the shipped config/mosquitto (password file and per-device ACLs)"
        )
    if not _is_loopback(config.api.host):
        warnings.append(
            f"api.host {config.api.host} listens beyond this machine without TLS: bearer tokens cross the "
            "network in clear unless a TLS reverse proxy is in front (docs/operations.md)"
        )
    return warnings
