"""alpha-assets: crypto order-flow signals as Dagster assets."""
