"""The scale-out profile: Postgres instance storage, dagster-daemon with queued runs and run
monitoring, and the dagster-celery executor with workers over Redis.

Nothing here is imported by the embedded default (SQLite + in-process); it needs the `[scale]`
extra (`pip install -e '.[scale]'`). `ALPHA_DEPLOYMENT=scale` selects it in the code location
(`alpha_assets.deployment`); `python -m alpha_assets.scale up` (`make scale`) runs the whole
profile on one machine the way it runs on several.
"""
