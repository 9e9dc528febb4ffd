"""Which admin pages a settings' flags call for, in menu order."""

from __future__ import annotations

from readapi.admin.views.accounts import GroupAdmin, PermissionAdmin, TokenAdmin, UserAdmin
from readapi.admin.views.base import BemcomModelView
from readapi.admin.views.connectors import ConnectorAdmin
from readapi.admin.views.control import ControlledDatapointAdmin, ControllerAdmin
from readapi.admin.views.datapoints import DatapointAdmin
from schema.settings import Settings


def views_for(settings: Settings) -> list[type[BemcomModelView]]:
    views: list[type[BemcomModelView]] = [ConnectorAdmin, DatapointAdmin]
    if settings.activate_control_extension:
        views += [ControllerAdmin, ControlledDatapointAdmin]
    views += [UserAdmin, GroupAdmin, PermissionAdmin, TokenAdmin]
    return views
