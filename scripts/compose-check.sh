#!/usr/bin/env bash
# Validates docker-compose.yml the way CI can (no Docker engine, a clean
# clone without .env): `docker-compose config -q` with every profile, with
# dummy values for the required variables, then once per required variable
# with that one blank, which must fail with a message naming it.
#
# The required variables are ${VAR:?message} in docker-compose.yml; the
# dummies below only let the file interpolate and are never used to run
# anything. Variables set in the environment override .env, so a developer's
# own .env does not change the outcome.
set -euo pipefail
cd "$(dirname "$0")/.."

required=(NOTIONSYNC_TOKEN_KEYS NOTIONSYNC_NOTION_CLIENT_ID NOTIONSYNC_NOTION_CLIENT_SECRET NOTIONSYNC_ADMIN_TOKEN)
dummies=(
	NOTIONSYNC_TOKEN_KEYS=k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
	NOTIONSYNC_NOTION_CLIENT_ID=compose-check
	NOTIONSYNC_NOTION_CLIENT_SECRET=compose-check
	NOTIONSYNC_ADMIN_TOKEN=compose-check-0123456789
)

env "${dummies[@]}" docker-compose config -q
env "${dummies[@]}" docker-compose --profile postgres --profile sandbox config -q

err=$(mktemp)
trap 'rm -f "$err"' EXIT
for v in "${required[@]}"; do
	if env "${dummies[@]}" "$v=" docker-compose config -q 2>"$err"; then
		echo "compose-check: docker-compose config accepted a blank $v; want \${$v:?...} in docker-compose.yml" >&2
		exit 1
	fi
	if ! grep -q "set $v in .env" "$err"; then
		echo "compose-check: a blank $v failed without naming it:" >&2
		cat "$err" >&2
		exit 1
	fi
done
echo "compose-check: docker-compose.yml is valid; each blank required variable is refused with its name"
