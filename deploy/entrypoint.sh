#!/usr/bin/env bash
# Container entrypoint: migrate, create the accounts, then run the chosen process.
#
#   bemcom-entrypoint all       ingestd and readapi in one container (the default)
#   bemcom-entrypoint ingestd   only the MQTT -> database daemon
#   bemcom-entrypoint readapi   only the REST API (port 8080)
#   bemcom-entrypoint migrate   migrate and create the accounts, then exit (an init job)
#   bemcom-entrypoint backup -b -t http://... ...   the backup tool (python -m backup)
#   bemcom-entrypoint <anything else>               run that command (e.g. bash)
#
# The role may also come from BEMCOM_ROLE when no argument is given.
set -euo pipefail

PYTHON="${BEMCOM_PYTHON:-python}"
MIGRATE_ATTEMPTS="${BEMCOM_MIGRATE_ATTEMPTS:-30}"
MIGRATE_DELAY="${BEMCOM_MIGRATE_DELAY:-2}"

log() { echo "entrypoint: $*" >&2; }

migrate() {
    # The database container may still be starting (compose starts everything at once).
    local attempt=1
    until "$PYTHON" -m schema migrate; do
        if (( attempt >= MIGRATE_ATTEMPTS )); then
            log "the database could not be migrated after $attempt attempts"
            exit 1
        fi
        log "migration failed (attempt $attempt of $MIGRATE_ATTEMPTS); retrying in ${MIGRATE_DELAY}s"
        attempt=$(( attempt + 1 ))
        sleep "$MIGRATE_DELAY"
    done
}

create_superuser() {
    # As the original: only when username and password are both given, and only if the
    # account does not exist yet. A password changed in the admin UI, or an account
    # deactivated there, survives a restart: the variables seed the account, never reset it.
    if [[ -n "${DJANGO_SUPERUSER_USERNAME:-}" && -n "${DJANGO_SUPERUSER_PASSWORD:-}" ]]; then
        printf '%s\n' "$DJANGO_SUPERUSER_PASSWORD" | "$PYTHON" -m readapi createuser \
            "$DJANGO_SUPERUSER_USERNAME" --superuser --keep-existing \
            --email "${DJANGO_SUPERUSER_EMAIL:-}"
    fi
}

create_metrics_user() {
    # The account Prometheus scrapes /metrics/ with (compose profile `monitoring`). Its
    # password is the variable's: set at every start, so changing the variable changes it.
    if [[ -n "${BEMCOM_METRICS_PASSWORD:-}" ]]; then
        printf '%s\n' "$BEMCOM_METRICS_PASSWORD" | "$PYTHON" -m readapi createuser \
            "${BEMCOM_METRICS_USERNAME:-prometheus}" --permission view_datapoint
    fi
}

check_accounts() {
    # Before anything starts: createuser would make the superuser a metrics-only account.
    if [[ -n "${BEMCOM_METRICS_PASSWORD:-}" \
          && "${BEMCOM_METRICS_USERNAME:-prometheus}" == "${DJANGO_SUPERUSER_USERNAME:-}" ]]; then
        log "BEMCOM_METRICS_USERNAME must not be the superuser (it would lose its rights)"
        exit 2
    fi
}

create_accounts() {
    create_superuser
    create_metrics_user
}

run_both() {
    # Two children; when either ends (or on SIGTERM/SIGINT) stop the other, exit with its code.
    "$PYTHON" -m ingestd &
    local ingestd_pid=$!
    "$PYTHON" -m readapi &
    local readapi_pid=$!
    local stopping=0
    trap 'stopping=1; kill -TERM "$ingestd_pid" "$readapi_pid" 2>/dev/null || true' TERM INT
    local code=0
    wait -n "$ingestd_pid" "$readapi_pid" || code=$?
    if (( stopping == 0 )); then
        log "a process exited with code $code; stopping the other"
    fi
    kill -TERM "$ingestd_pid" "$readapi_pid" 2>/dev/null || true
    wait "$ingestd_pid" 2>/dev/null || true
    wait "$readapi_pid" 2>/dev/null || true
    if (( stopping == 1 )); then
        exit 0
    fi
    exit "$code"
}

role="${1:-${BEMCOM_ROLE:-all}}"
case "$role" in
    migrate)
        check_accounts
        migrate
        create_accounts
        ;;
    ingestd)
        migrate
        exec "$PYTHON" -m ingestd
        ;;
    readapi)
        check_accounts
        migrate
        create_accounts
        exec "$PYTHON" -m readapi
        ;;
    all)
        check_accounts
        migrate
        create_accounts
        run_both
        ;;
    backup)
        shift
        exec "$PYTHON" -m backup "$@"
        ;;
    *)
        if (( $# == 0 )); then
            log "unknown role '$role' (expected all, ingestd, readapi, migrate or backup)"
            exit 2
        fi
        exec "$@"
        ;;
esac
