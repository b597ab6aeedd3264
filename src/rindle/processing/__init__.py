"""Background processing: promotion, variant rendering and purge job handlers."""
