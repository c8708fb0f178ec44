"""Per request, pure (no Flask app or request object, no database): the compiled
snapshot and the origin verdict (``snapshot``), the one evaluator (``decide``) and
its memo type (``memo``), the explanation (``explain``), what usage counts of an
Origin (``counting``), the Flask-CORS bridge (``headers``)."""
