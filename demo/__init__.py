"""The demo data of `python3 dev.py up`: demo users, items and hand-written example answers, seeded by
`manage.py seed_demo` (the demo policies are the policy app's, `policies_app.demo`)."""
