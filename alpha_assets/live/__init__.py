"""The live path: supervised worker processes, probes, metrics export and the soak run."""
