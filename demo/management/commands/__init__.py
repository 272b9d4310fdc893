"""seed_demo: demo users, policies, items and hand-written answers."""
