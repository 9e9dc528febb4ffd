#!/bin/sh
# The Prometheus container's entrypoint: refuse to start without the metrics password, write
# it where prometheus.yml's password_file points (owner-only), then run Prometheus.
# Prometheus does not expand environment variables in its configuration, hence the file.
set -eu
if [ -z "${BEMCOM_METRICS_PASSWORD:-}" ]; then
    echo "prometheus: set BEMCOM_METRICS_PASSWORD (the same for readapi and prometheus)" >&2
    exit 2
fi
password_file="${BEMCOM_METRICS_PASSWORD_FILE:-/prometheus/metrics-password}"
umask 077
printf '%s' "$BEMCOM_METRICS_PASSWORD" > "$password_file"
unset BEMCOM_METRICS_PASSWORD
exec "${BEMCOM_PROMETHEUS_BINARY:-/bin/prometheus}" "$@"
