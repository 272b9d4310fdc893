"""safeguard_worker (the worker), sweep_classifications (one sweep) and bench_reasoner."""
