"""Kafka: the local broker and the admin helpers every component uses."""
