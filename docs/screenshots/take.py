"""Regenerate the admin UI screenshots in this folder (1280x800, headless Chromium).

    .venv/bin/python docs/screenshots/take.py              # every one
    .venv/bin/python docs/screenshots/take.py draft review-draft   # only these

Seeds a throwaway SQLite database with a demo policy set (several operators,
usage, refused origins, an expiring and a stale rule), serves it with
``manage.py run`` and photographs each screen; then proposes a draft (Acme moves
to a new app: its old origin removed, the methods narrowed, with what history and
the workers counted) and photographs the draft page and the review screen with it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))

PASSWORD = "demo operator password"  # noqa: S105 - a throwaway demo database
VIEWPORT = {"width": 1280, "height": 800}


def seed(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    import sqlalchemy as sa

    from corsadmin.db import operators
    from corsadmin.db.models import AuditEvent, OriginRuleRow, OriginUsage, Policy, utcnow
    from manage import cors, create_app

    app = create_app({"CORSADMIN_REFRESH_IN_BACKGROUND": False})
    now = utcnow()
    with app.app_context():
        cors.upgrade_schema(app)
        session = cors.state(app).db.session
        operators.add_operator(session, "alice", PASSWORD, actor="cli:root")
        deploy = cors.store("cli:deploy", app)
        deploy.import_document(
            {
                "corsadmin": 1,
                "policies": [
                    {
                        "name": "partner-api",
                        "path": "/api/v1/**",
                        "description": "Partner integrations: orders and catalogue",
                        "origins": [
                            "https://app.acme-partner.example",
                            "https://portal.globex.example",
                            "http://localhost:3000",
                        ],
                        "methods": ["GET", "POST", "PUT", "DELETE"],
                        "allow_headers": ["Content-Type", "Authorization", "X-Request-Id"],
                        "expose_headers": ["X-Request-Id"],
                        "credentials": True,
                        "max_age": 600,
                    },
                    {
                        "name": "public-status",
                        "path": "/api/status",
                        "description": "Status page widget, embeddable anywhere",
                        "origins": ["*"],
                        "methods": ["GET"],
                        "review_every_days": 90,
                    },
                    {
                        "name": "webhooks",
                        "path": "/hooks/**",
                        "origins": [
                            "https://hooks.initech.example",
                            "http://legacy.initech.example",
                        ],
                        "methods": ["POST"],
                        "review_every_days": 30,
                    },
                    {
                        "name": "files",
                        "path": "/files/*.json",
                        "origins": ["https://cdn.acme-partner.example", "null"],
                        "methods": ["GET"],
                    },
                    {
                        "name": "internal-tools",
                        "path": "/internal/**",
                        "origins": ["https://tools.corp.example"],
                        "private_network": True,
                        "enabled": False,
                    },
                ],
            }
        )
        alice = cors.store("alice", app)
        alice.add_origin(
            "partner-api",
            "https://*.staging.acme-partner.example",
            note="Acme staging, ticket OPS-318",
            expires=now + timedelta(days=9),
        )
        alice.add_origin(
            "partner-api", "https://app.acme-partner.example", note="Acme integration, OPS-142"
        )
        bob = cors.store("bob", app)
        bob.add_origin("webhooks", "https://old.initech.example", note="migration window")
        bob.update_policy("webhooks", {"max_age": 300})
        alice.mark_reviewed("partner-api", "checked with Acme and Globex: both still live")

        # Age the data: rules added months ago, seen recently or not at all.
        session.execute(sa.update(Policy).values(created_at=now - timedelta(days=120)))
        session.execute(sa.update(OriginRuleRow).values(created_at=now - timedelta(days=100)))
        session.execute(
            sa.update(Policy)
            .where(Policy.name == "partner-api")
            .values(reviewed_at=now - timedelta(days=20))
        )
        seen = {
            "https://app.acme-partner.example": timedelta(hours=2),
            "https://portal.globex.example": timedelta(days=3),
            "http://localhost:3000": timedelta(days=1),
            "https://hooks.initech.example": timedelta(days=45),
            "https://cdn.acme-partner.example": timedelta(minutes=12),
        }
        for origin, ago in seen.items():
            session.execute(
                sa.update(OriginRuleRow)
                .where(OriginRuleRow.origin == origin)
                .values(last_seen_at=now - ago)
            )
        changed = {
            "files": timedelta(days=34),
            "internal-tools": timedelta(days=61),
            "partner-api": timedelta(hours=2),
            "public-status": timedelta(days=118),
            "webhooks": timedelta(days=3),
        }
        for name, ago in changed.items():
            session.execute(
                sa.update(Policy).where(Policy.name == name).values(updated_at=now - ago)
            )
        event_ids = session.scalars(sa.select(AuditEvent.id).order_by(AuditEvent.id.desc()))
        for i, event_id in enumerate(list(event_ids)):
            session.execute(
                sa.update(AuditEvent)
                .where(AuditEvent.id == event_id)
                .values(at=now - timedelta(hours=2 + 19 * i))
            )
        session.execute(
            sa.update(OriginRuleRow)
            .where(OriginRuleRow.origin == "https://old.initech.example")
            .values(expires_at=now - timedelta(days=5))
        )
        refused = [  # policy, origin, count, first seen (days ago), last seen, last call
            ("partner-api", "https://app.newpartner.example", 214, 3, timedelta(minutes=10),
             "GET", "/api/partner/v1/orders"),
            ("partner-api", "https://acme-partner.example.attacker.example", 12, 6,
             timedelta(days=1), "OPTIONS", "/api/partner/v1/account"),
            ("webhooks", "https://hooks.initech.example:8443", 3, 2, timedelta(hours=5),
             "POST", "/hooks/inbound"),
            ("files", "https://widgets.umbrella.example", 41, 9, timedelta(hours=1),
             "GET", "/files/logo.svg"),
        ]  # fmt: skip
        for policy, origin, count, first, last, method, path in refused:
            session.add(
                OriginUsage(
                    policy_name=policy,
                    origin=origin,
                    rule=None,
                    allowed=False,
                    count=count,
                    first_seen=now - timedelta(days=first),
                    last_seen=now - last,
                    example_method=method,
                    example_path=path,
                )
            )
        session.commit()
    cors.stop(app)


def seed_draft(database_url: str) -> None:
    """The demo draft: Acme's old app removed from partner-api, its new one added, the
    methods narrowed; the usage history of the old app and what the workers counted."""
    os.environ["DATABASE_URL"] = database_url
    from corsadmin.db.drafts import DraftStore
    from corsadmin.db.models import DraftTrafficRow, OriginUsage, utcnow
    from manage import cors, create_app

    app = create_app({"CORSADMIN_REFRESH_IN_BACKGROUND": False})
    now = utcnow()
    with app.app_context():
        session = cors.state(app).db.session
        drafts = DraftStore(cors.store("alice", app))
        drafts.remove_origin(
            "partner-api",
            "https://app.acme-partner.example",
            reason="OPS-512: Acme moves to app2; the old app is switched off on Friday",
        )
        drafts.add_origin(
            "partner-api", "https://app2.acme-partner.example", note="Acme's new app, OPS-512"
        )
        DraftStore(cors.store("bob", app)).update_policy(
            "partner-api", {"methods": ["GET", "POST", "PUT"]}
        )
        for origin, count, days, ago in [
            ("https://app.acme-partner.example", 41200, 60, timedelta(minutes=2)),
            ("https://portal.globex.example", 3180, 90, timedelta(days=3)),
        ]:
            session.add(
                OriginUsage(
                    policy_name="partner-api",
                    origin=origin,
                    rule=origin,
                    allowed=True,
                    count=count,
                    first_seen=now - timedelta(days=days),
                    last_seen=now - ago,
                )
            )
        draft_id = drafts.require_active().id
        for outcome, origin, count, method, path in [
            ("evaluated", "", 5310, "", ""),
            ("newly-refused", "https://app.acme-partner.example", 1180, "GET", "/api/v1/orders"),
            ("headers", "https://portal.globex.example", 24, "OPTIONS", "/api/v1/orders/7"),
        ]:
            session.add(
                DraftTrafficRow(
                    draft_id=draft_id,
                    policy_name="partner-api",
                    outcome=outcome,
                    origin=origin,
                    count=count,
                    first_seen=now - timedelta(minutes=40),
                    last_seen=now - timedelta(seconds=50),
                    example_path=path,
                    example_method=method,
                )
            )
        session.commit()
    cors.stop(app)


def seed_workers(database_url: str) -> None:
    """The demo fleet beside the demo server's own process: two hosts of four gunicorn
    workers each on the current revision, and one worker of a third host still on the
    revision before, its LISTEN connection down (lagging: the change is a few seconds
    old by the time of the photograph)."""
    import time

    import sqlalchemy as sa

    from corsadmin.db import fleet
    from corsadmin.db.models import State
    from corsadmin.engine.fleet import FLEET_MARGIN, LAGGING_INTERVALS, WorkerFacts

    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        row = connection.execute(sa.select(State.revision, State.changed_at)).one()
    revision, committed = int(row.revision), row.changed_at.timestamp()
    time.sleep(max(0.0, committed + LAGGING_INTERVALS + FLEET_MARGIN + 0.5 - time.time()))
    now = time.time()
    delays = [0.031, 0.027, 0.044, 0.029, 0.038, 0.041, 0.033, 0.036]
    for i, delay in enumerate(delays):
        host = "web-1.prod.example" if i < 4 else "web-2.prod.example"
        fleet.report(
            engine,
            WorkerFacts(
                host=host,
                pid=4100 + 7 * i if i < 4 else 2200 + 5 * i,
                started_at=now - 86400 * 2 - 600 * i,
                revision=revision,
                loaded_at=committed + delay,
                committed_at=committed,
                checked_at=now - 0.2 * (i % 5),
                listening=True,
                interval=1.0,
                reported_at=now - 0.3 * (i % 4),
            ),
        )
    fleet.report(
        engine,
        WorkerFacts(
            host="web-3.prod.example",
            pid=917,
            started_at=now - 86400 * 9,
            revision=revision - 1,
            loaded_at=now - 86400,
            committed_at=now - 86400 - 0.05,
            checked_at=now - 0.6,
            listening=False,
            interval=1.0,
            reported_at=now - 0.6,
        ),
    )
    engine.dispose()


#: The screens photographed before the draft is made: (name, path under the admin).
BEFORE_DRAFT = [
    ("policies", "/"),
    ("policy", "/policies/partner-api"),
    ("review", "/review"),
    ("refused", "/refused"),
    ("allow", "/refused/allow?policy=partner-api&origin=https://app.newpartner.example"),
    ("audit", "/audit"),
    (
        "check",
        "/check?origin=https://app.acme-partner.example&path=/api/v1/orders/7"
        "&method=PUT&headers=Content-Type:+application/json%0AX-Trace",
    ),
]
#: The screens photographed with the demo draft active.
WITH_DRAFT = [("draft", "/draft"), ("review-draft", "/review")]


def main(wanted: set[str]) -> None:
    from playwright.sync_api import sync_playwright

    from tests.support.browser import launch_chromium
    from tests.support.servers import free_port, serve_process

    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite:///{tmp}/demo.sqlite"
        seed(database_url)
        env = {**os.environ, "DATABASE_URL": database_url}
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        admin = f"{base}/corsadmin"
        with (
            serve_process(
                [sys.executable, "manage.py", "run", "--port", str(port)],
                port=port,
                env=env,
                cwd=REPO,
                log_path=Path(tmp) / "server.log",
            ),
            sync_playwright() as playwright,
        ):
            browser = launch_chromium(playwright)
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.goto(f"{admin}/login")
            page.fill("#name", "alice")
            page.fill("#password", PASSWORD)
            page.press("#password", "Enter")
            page.wait_for_url(f"{admin}/")

            def shot(name: str, path: str) -> None:
                if wanted and name not in wanted:
                    return
                page.goto(admin + path)
                if name == "audit":
                    page.locator("details > summary").first.click()
                page.screenshot(path=str(HERE / f"{name}.png"), full_page=name == "draft")
                print(f"docs/screenshots/{name}.png")

            for name, path in BEFORE_DRAFT:
                shot(name, path)
            seed_draft(database_url)
            for name, path in WITH_DRAFT:
                shot(name, path)
            seed_workers(database_url)
            shot("workers", "/workers")
            browser.close()


if __name__ == "__main__":
    main(set(sys.argv[1:]))
