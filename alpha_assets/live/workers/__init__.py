"""Worker processes run by the supervisor: `python -m alpha_assets.live.workers.<name>`."""
