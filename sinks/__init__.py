"""Forwarding upstream: an InfluxDB v2 sink fed from the store (its durable buffer), and the
gateway's own MQTT topics for a bridge to a district broker.

Reads the store and the alert service's messages; imported only by gateway/, which wires it.
"""
