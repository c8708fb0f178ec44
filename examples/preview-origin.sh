#!/usr/bin/env bash
# Allow a preview environment's origin while its branch is open, and remove it when the
# branch closes: a deploy pipeline's two steps, through corsadmin's HTTP API with curl.
#
#   preview-origin.sh add POLICY ORIGIN [NOTE [EXPIRES]]
#   preview-origin.sh remove POLICY ORIGIN
#
# CORSADMIN_URL    the admin prefix of the app, e.g. https://app.example/corsadmin
# CORSADMIN_TOKEN  a write token: `corsadmin token create pipeline --scope write`
#
# EXPIRES is ISO 8601 in UTC (default: 14 days from now), so a preview origin that the
# pipeline never removes stops working by itself. A problem (RFC 9457 JSON) is printed
# and the script exits non-zero when the API refuses the change.
set -euo pipefail

usage() {
  echo "usage: $0 add POLICY ORIGIN [NOTE [EXPIRES]] | remove POLICY ORIGIN" >&2
  exit 2
}

[ $# -ge 3 ] || usage
action=$1 policy=$2 origin=$3
api="${CORSADMIN_URL:?set CORSADMIN_URL, e.g. https://app.example/corsadmin}/api/v1"
auth="Authorization: Bearer ${CORSADMIN_TOKEN:?set CORSADMIN_TOKEN (a write token)}"

case "$action" in
  add)
    note=${4:-"preview environment (pipeline)"}
    expires=${5:-$(date -u -d "+14 days" +%Y-%m-%dT%H:%M:%SZ)}
    curl --silent --show-error --fail-with-body \
      -X POST "$api/policies/$policy/origins" \
      -H "$auth" -H "Content-Type: application/json" \
      --data "{\"origin\": \"$origin\", \"note\": \"$note\", \"expires\": \"$expires\"}"
    echo
    ;;
  remove)
    curl --silent --show-error --fail-with-body \
      -X DELETE -G "$api/policies/$policy/origins" --data-urlencode "origin=$origin" \
      -H "$auth"
    echo "removed $origin from $policy"
    ;;
  *)
    usage
    ;;
esac
