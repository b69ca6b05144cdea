"""Monitoring as code: Prometheus rules, Alertmanager routes and the Grafana dashboard.

The files under ``deploy/prometheus``, ``deploy/alertmanager`` and ``deploy/grafana`` are generated
from these modules (``python -m alpha_assets.monitoring``), so every metric name they use comes
from ``alpha_assets.live.metric_names``.
"""
