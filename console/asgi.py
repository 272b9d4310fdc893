"""ASGI entry point: HTTP through Django, WebSockets through channels (served by daphne)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
# Build the Django app first: it sets up the app registry that the routing imports below need.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from console.routing import websocket_urlpatterns  # noqa: E402
from enforcement.routing import websocket_urlpatterns as appeal_urlpatterns  # noqa: E402
from evaluations.routing import websocket_urlpatterns as evaluation_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The entry point mounts every app's routes, as console/urls.py includes each app's URLconf.
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter([*websocket_urlpatterns, *evaluation_urlpatterns, *appeal_urlpatterns]))
        ),
    }
)
