"""Applications written with Flask-CORS, as its users write them (``import-flask-cors``).

Each example builds its routes twice: on an app with Flask-CORS (``flask_cors=True``,
what the user has) and on corsadmin's twin (``flask_cors=False``: the same routes,
no Flask-CORS), so both answer the same requests. :func:`create_app` is what
``import-flask-cors --app 'tests.support.flask_cors_apps:create_app("seed")'`` loads.

The examples: the classic one (Flask-CORS's README: a resource ``r"/api/*"`` with
``origins: "*"`` and ``@cross_origin()`` on a view) and those of Flask-CORS's
documentation and examples directory (the simplest ``CORS(app)``, the app-based
example with ``allow_headers``, the view-based one), and two of the usual
production shapes (listed origins with credentials; a regex origin).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from flask import Flask, jsonify
from flask_cors import CORS, cross_origin

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _decorator(flask_cors: bool, **options: Any) -> Decorator:
    """``@cross_origin(**options)`` on the Flask-CORS app, nothing on the twin."""
    if flask_cors:
        return cross_origin(**options)  # type: ignore[arg-type]
    return lambda view: view


def _api_routes(app: Flask) -> None:
    @app.get("/api/v1/users/")
    def list_users() -> Any:
        return jsonify(user="joe")

    @app.post("/api/v1/users/create")
    def create_user() -> Any:
        return jsonify(success=True)

    @app.route("/api/items/<int:item_id>", methods=["GET", "PUT", "DELETE"])
    def item(item_id: int) -> Any:
        return jsonify(id=item_id)

    @app.get("/public/page")
    def page() -> Any:
        return "a page no resource covers"


def seed(app: Flask, flask_cors: bool) -> None:
    """The classic example: a resource for the API, a decorated view for the rest."""
    _api_routes(app)

    @app.route("/")
    @_decorator(flask_cors)
    def hello_world() -> Any:
        return "Hello, cross-origin-world!"

    if flask_cors:
        CORS(app, resources={r"/api/*": {"origins": "*"}})


def simple(app: Flask, flask_cors: bool) -> None:
    """``CORS(app)``: every origin, every route."""
    _api_routes(app)
    if flask_cors:
        CORS(app)


def app_based(app: Flask, flask_cors: bool) -> None:
    """Flask-CORS's app-based example: ``resources=r'/api/*'``, ``allow_headers``."""
    _api_routes(app)
    if flask_cors:
        CORS(app, resources=r"/api/*", allow_headers="Content-Type")


def view_based(app: Flask, flask_cors: bool) -> None:
    """Flask-CORS's view-based example: two decorated views."""
    _api_routes(app)

    @app.get("/")
    @_decorator(flask_cors)
    def hello_world() -> Any:
        return "Hello CORS!"

    @app.route("/api/v1/user/create", methods=["GET", "POST"])
    @_decorator(flask_cors, allow_headers=["Content-Type"])
    def cross_origin_json_post() -> Any:
        return jsonify(success=True)


def credentials(app: Flask, flask_cors: bool) -> None:
    """Listed origins, credentials, exposed headers and a preflight cache."""
    _api_routes(app)
    if flask_cors:
        CORS(
            app,
            resources={
                r"/api/.*": {"origins": ["https://app.example.com", "http://localhost:3000"]}
            },
            supports_credentials=True,
            expose_headers=["X-Total-Count"],
            allow_headers=["Content-Type", "Authorization"],
            methods=["GET", "POST", "PUT"],
            max_age=600,
        )


def regex_origin(app: Flask, flask_cors: bool) -> None:
    """An origin regex, anchored at its end, and a literal path resource."""
    _api_routes(app)
    if flask_cors:
        CORS(
            app,
            resources={"/api/v1/users/": {}, r"/api/items/.*": {"methods": ["GET"]}},
            origins=[r"https://.*\.example\.com$", "http://localhost:8080"],
        )


def configured(app: Flask, flask_cors: bool) -> None:
    """Options in the app's ``CORS_*`` configuration (Flask-CORS's documented third
    place), read by the extension and by a decorated view alike."""
    _api_routes(app)

    @app.route("/")
    @_decorator(flask_cors, methods=["GET"])
    def home() -> Any:
        return "home"

    if flask_cors:
        app.config.update(
            CORS_ORIGINS=["https://app.example.com", "http://localhost:8080"],
            CORS_EXPOSE_HEADERS="X-Request-Id",
            CORS_ALLOW_PRIVATE_NETWORK=True,
        )
        CORS(app, resources={r"/api/items/*": {"max_age": 30}, r"/api/v1/*": {}})


#: Every example by name.
EXAMPLES: Final[dict[str, Callable[[Flask, bool], None]]] = {
    "seed": seed,
    "simple": simple,
    "app_based": app_based,
    "view_based": view_based,
    "credentials": credentials,
    "regex_origin": regex_origin,
    "configured": configured,
}


def create_app(name: str) -> Flask:
    """The example ``name`` with Flask-CORS (what ``--app`` names)."""
    app = Flask(f"flask_cors_{name}")
    EXAMPLES[name](app, True)
    return app


def plain_app() -> Flask:
    """The routes without Flask-CORS (what ``--app`` must not be)."""
    app = Flask("flask_cors_plain")
    _api_routes(app)
    return app


def unsupported_app() -> Flask:
    """Options corsadmin cannot express: '*' with credentials, a header regex,
    ``vary_header=False``, a path regex with ``.*`` in the middle."""
    app = Flask("flask_cors_unsupported")
    _api_routes(app)
    CORS(
        app,
        resources={
            r"/api/v1/.*": {"origins": "*", "supports_credentials": True},
            r"/api/items/.*": {
                "origins": "https://a.example",
                "allow_headers": [r"X-.*", "Content-Type"],
            },
            r"/public/.*/x": {"origins": "https://a.example"},
        },
        vary_header=False,
    )
    return app
