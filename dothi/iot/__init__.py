"""Devices in: IoT-Agent-compatible provisioning, MQTT/HTTP ingestion, health, commands."""
