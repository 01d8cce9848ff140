"""Stand-ins for campus hardware: an MQTT device fleet with scenarios (`fleet`, `scenarios`)."""
