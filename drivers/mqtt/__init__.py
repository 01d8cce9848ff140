"""MQTT ingest: protocol v1 decoding (`codec`) and the broker client (`client`)."""
