"""Who may do what in the admin UI: the API's per-model codenames, mapped onto sqladmin.

Every view names the model of its permissions (`permission_model`, as in PERMISSION_MODELS);
view_<model> opens its list and details, add_/change_/delete_<model> its forms and deletes.
The same grants decide what the templates show and what the server accepts.
"""

from __future__ import annotations

from sqladmin.authorization import Action, GrantsAuthorizationBackend
from starlette.requests import Request

from readapi.admin.auth import principal_of

ACTION_CODENAME_PREFIX = {
    Action.LIST: "view",
    Action.DETAILS: "view",
    Action.EXPORT: "view",
    Action.CREATE: "add",
    Action.EDIT: "change",
    Action.DELETE: "delete",
}


class CodenameAuthorization(GrantsAuthorizationBackend):
    def __init__(self) -> None:
        self.models: dict[str, str] = {}  # view identity -> permission model

    def register(self, identity: str, model: str) -> None:
        self.models[identity] = model

    async def get_grants(self, request: Request) -> set[tuple[str, str]]:
        principal = principal_of(request)
        if principal is None:
            return set()
        if principal.is_superuser:
            return {("*", "*")}
        grants = set()
        for identity, model in self.models.items():
            for action, prefix in ACTION_CODENAME_PREFIX.items():
                if f"{prefix}_{model}" in principal.permissions:
                    grants.add((identity, str(action)))
        return grants


def has(request: Request, codename: str) -> bool:
    """A codename check for the custom pages (superusers have every permission)."""
    principal = principal_of(request)
    return principal is not None and principal.has(codename)


# The message kinds and the model of their permissions, as the REST API checks them.
MESSAGE_MODELS = {
    "value": "datapointvalue",
    "setpoint": "datapointsetpoint",
    "schedule": "datapointschedule",
}


def viewable_kinds(request: Request) -> frozenset[str]:
    """The message kinds whose contents this user may see: view_datapoint<kind>, as
    GET /datapoint/<id>/<kind>/ requires. view_datapoint alone shows metadata only."""
    return frozenset(k for k, model in MESSAGE_MODELS.items() if has(request, f"view_{model}"))
