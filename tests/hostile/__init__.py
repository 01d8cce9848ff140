"""Hostile and broken devices: no payload may silence, hide or block another alarm."""
