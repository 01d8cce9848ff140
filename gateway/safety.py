"""Loud warnings about a config that runs but is unsafe: example passwords, open listeners.

`check-config` prints them and `run` logs them at WARNING at every start, so an example secret
copied into a real install is seen by whoever reads either. Example API tokens are handled where
the config is loaded (refused beyond loopback, warned about on it: gateway/config.py).
"""

from __future__ import annotations

from gateway.config import GatewayConfig, is_loopback

# Passwords that appear in the project's examples and docs, or that anyone would guess.
EXAMPLE_PASSWORDS = frozenset({"change-me", "changeme", "password", "admin", "gateway", "123456", "12345678"})


def config_warnings(config: GatewayConfig) -> list[str]:
    """What an admin must fix before the gateway faces a school network, one sentence each."""
    warnings = []
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
    if not is_loopback(config.api.host):
        warnings.append(
            f"api.host {config.api.host} listens beyond this machine without TLS: bearer tokens cross the "
            "network in clear unless a TLS reverse proxy is in front (docs/operations.md)"
        )
    return warnings
