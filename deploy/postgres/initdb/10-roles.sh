#!/bin/sh
# Run once by the postgres image (docker-entrypoint-initdb.d), on an empty data volume, as
# POSTGRES_USER in POSTGRES_DB: creates the pipeline's roles and schemas (roles.psql beside this
# file) with the passwords of the POSTGRES_<ROLE>_PASSWORD variables, which docker-compose.yml
# passes from .env (deploy/README.md). SQL files cannot read the environment, hence this script.
#
# The image executes this file, or sources it when it is not executable: everything runs in a
# subshell so that neither `set` nor `exit` reaches the image's own script.
(
    set -eu
    prefix="${COC_DB_ROLE_PREFIX:-coc_}"  # tests only: roles under a prefix of their own
    sql="${COC_ROLES_SQL:-/docker-entrypoint-initdb.d/roles.psql}"
    missing=""
    for role in ORDERS PAYMENTS SUPPLIER_GATEWAY NOTIFICATIONS GDPR OPS SUPPORT ARCHIVE CONSOLE; do
        eval "password=\${POSTGRES_${role}_PASSWORD:-}"
        if [ "${#password}" -lt 16 ]; then
            missing="$missing POSTGRES_${role}_PASSWORD"
        fi
    done
    if [ -n "$missing" ]; then
        echo "10-roles.sh: set these variables (16 characters at least):$missing" >&2
        exit 1
    fi
    psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
        --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
        -v prefix="$prefix" \
        -v orders_password="$POSTGRES_ORDERS_PASSWORD" \
        -v payments_password="$POSTGRES_PAYMENTS_PASSWORD" \
        -v supplier_gateway_password="$POSTGRES_SUPPLIER_GATEWAY_PASSWORD" \
        -v notifications_password="$POSTGRES_NOTIFICATIONS_PASSWORD" \
        -v gdpr_password="$POSTGRES_GDPR_PASSWORD" \
        -v ops_password="$POSTGRES_OPS_PASSWORD" \
        -v support_password="$POSTGRES_SUPPORT_PASSWORD" \
        -v archive_password="$POSTGRES_ARCHIVE_PASSWORD" \
        -v console_password="$POSTGRES_CONSOLE_PASSWORD" \
        -f "$sql"
)
