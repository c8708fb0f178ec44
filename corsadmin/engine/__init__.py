"""Per request, pure (no Flask app or request object, no database): the compiled
snapshot and its decision (``snapshot``), the evaluation and explanation
(``explain``), what usage counts of an Origin (``counting``), the Flask-CORS
bridge (``headers``)."""
