"""The MQTT client id of this ingestd instance."""

from __future__ import annotations

from collections.abc import Mapping

from schema.settings import Settings


def client_id_for(settings: Settings, env: Mapping[str, str], hostname: str) -> str:
    """INGESTD_CLIENT_ID when set; in a share group without one, one per host.

    Instances of a share group must not share a client id (the broker would disconnect one
    whenever the other connects), and `docker compose up --scale ingestd=3` gives each container
    the same environment but its own hostname, which also survives a container restart, so the
    broker keeps each instance's session across restarts.
    """
    if settings.ingestd_share_group and not (env.get("INGESTD_CLIENT_ID") or "").strip():
        return f"{settings.ingestd_client_id}-{hostname}"[:128]
    return settings.ingestd_client_id
