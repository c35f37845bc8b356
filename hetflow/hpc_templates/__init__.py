"""Jinja2 job-script templates (Slurm, PBS, LSF), shipped as package data."""
