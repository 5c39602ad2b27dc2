#!/usr/bin/env bash
# A stand-in for a certificate authority's client: it "issues" a certificate for $DOMAIN valid for
# $VALIDITY_DAYS days into $OUT_DIR, after checking the token it was given. Real playbooks would call
# certbot, step-ca, vault or an ACME client here.
set -euo pipefail
: "${DOMAIN:?}" "${VALIDITY_DAYS:?}" "${OUT_DIR:?}" "${PLAYBOOK_PARAM_CA_TOKEN:?a CA token is required}"
if [ "${#PLAYBOOK_PARAM_CA_TOKEN}" -lt 8 ]; then
  echo "the CA refused the token (too short)" >&2
  exit 1
fi
serial=$(( (RANDOM << 15 | RANDOM) % 1000000 ))
mkdir -p "$OUT_DIR"
umask 077
printf 'KEY for %s (%s)\n' "$DOMAIN" "$KEY_TYPE" > "$OUT_DIR/$DOMAIN.key"
printf 'subject=CN=%s\nserial=%06d\nkey_type=%s\ndays_left=%s\n' \
  "$DOMAIN" "$serial" "$KEY_TYPE" "$VALIDITY_DAYS" > "$OUT_DIR/$DOMAIN.crt"
echo "serial=$(printf '%06d' "$serial")" >> "$PLAYBOOK_OUTPUT"
echo "cert=$OUT_DIR/$DOMAIN.crt" >> "$PLAYBOOK_OUTPUT"
echo "issued a new $KEY_TYPE certificate for $DOMAIN, valid $VALIDITY_DAYS days"
