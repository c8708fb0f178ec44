"""Inside a running application: the request hook (``hook``), keeping the snapshot
fresh (``refresh``, ``notify``), counting usage (``usage``)."""
