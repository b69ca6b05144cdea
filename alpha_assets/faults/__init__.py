"""Fault injection on a running soak: plan, injectors, restart timelines, loss accounting, report."""
