#!/bin/sh
# Render the Alertmanager configuration from the environment and start Alertmanager with it.
#   ALERT_WEBHOOK_URL   where every alert is posted (Alertmanager's webhook JSON); required
#   ALERT_EMAIL_TO      also email alerts to this address (optional), through
#   ALERT_SMTP_SMARTHOST (host:port), ALERT_SMTP_FROM, ALERT_SMTP_USERNAME, ALERT_SMTP_PASSWORD
# Usage: render.sh TEMPLATE OUTPUT [alertmanager arguments...]  (no arguments after OUTPUT:
# render only). POSIX sh and sed: runs in the prom/alertmanager image (busybox).
set -eu
template=$1
output=$2
shift 2
: "${ALERT_WEBHOOK_URL:?ALERT_WEBHOOK_URL must be configured (where alerts are posted)}"
# sed replacement text: escape \, & and the | delimiter
escape() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }
sed -e "s|\${ALERT_WEBHOOK_URL}|$(escape "$ALERT_WEBHOOK_URL")|" "$template" > "$output"
if [ -n "${ALERT_EMAIL_TO:-}" ]; then
  : "${ALERT_SMTP_SMARTHOST:?ALERT_SMTP_SMARTHOST must be configured to email alerts}"
  cat >> "$output" <<YAML
    email_configs:
      - to: "${ALERT_EMAIL_TO}"
        from: "${ALERT_SMTP_FROM:-alertmanager@tribe.local}"
        smarthost: "${ALERT_SMTP_SMARTHOST}"
        auth_username: "${ALERT_SMTP_USERNAME:-}"
        auth_password: "${ALERT_SMTP_PASSWORD:-}"
        send_resolved: true
YAML
fi
if [ "$#" -gt 0 ]; then
  exec "$@" --config.file="$output"
fi
