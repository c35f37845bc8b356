"""Pure functions on structures and calculation results (never runs a calculator)."""
