#!/bin/sh
# The Grafana container's entrypoint: refuse to start without an admin password (Grafana's
# own default, admin/admin, would be a working default password), then Grafana's /run.sh.
# The password only seeds the admin account on the first start; change it in Grafana later.
set -eu
if [ -z "${GF_SECURITY_ADMIN_PASSWORD:-}" ]; then
    echo "grafana: set GRAFANA_ADMIN_PASSWORD (the first password of Grafana's admin)" >&2
    exit 2
fi
exec "${BEMCOM_GRAFANA_RUN:-/run.sh}" "$@"
