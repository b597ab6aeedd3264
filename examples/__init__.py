"""Small host apps that embed rindle (each folder has a README and its tests live in
tests/examples)."""
