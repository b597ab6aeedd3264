"""Attack tests: each one is a hole an outside attacker found, closed and pinned here."""
