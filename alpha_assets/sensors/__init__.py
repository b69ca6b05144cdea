"""Sensors: soak trigger, landing-zone completion, run-failure alerts."""
