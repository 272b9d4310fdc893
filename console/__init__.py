"""The Django project (settings, urls, asgi, wsgi) and the review app: items, classifications, intake,
review queues, claims, decisions, comments, wellness, live updates and the dashboard."""
