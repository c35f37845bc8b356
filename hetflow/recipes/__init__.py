"""Recipes: the workflows users run (exchange scans, ZIF reactions, α/δ bulk, screening)."""
