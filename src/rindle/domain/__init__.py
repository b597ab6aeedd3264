"""The domain: models, state machines, profiles, variant specs and recipe digests."""
