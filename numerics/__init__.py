"""Numerical studies of symicl: scripts and configs (the library never imports these)."""
