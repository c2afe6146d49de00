#!/usr/bin/env bash
# ensure-deps.sh makes the external programs the tests need available.
#
#   scripts/ensure-deps.sh [redis] [postgres] [chromium] [docker-compose] [all]
#
# With no argument it checks redis only. For each missing program it installs
# the Debian package with apt-get when running as root, and otherwise prints
# what to install and exits 1. It is silent when everything is present.
#
# Installing redis-server may start a system service on port 6379 on some
# hosts; the tests never use it (they start their own servers on free ports),
# so it is left alone.
set -euo pipefail

want_redis=false
want_postgres=false
want_compose=false
want_chromium=false
[[ $# -eq 0 ]] && want_redis=true
for arg in "$@"; do
	case "$arg" in
	redis) want_redis=true ;;
	postgres) want_postgres=true ;;
	chromium) want_chromium=true ;;
	docker-compose) want_compose=true ;;
	all) want_redis=true want_postgres=true want_chromium=true want_compose=true ;;
	*)
		echo "ensure-deps: unknown dependency '$arg' (want redis, postgres, chromium, docker-compose or all)" >&2
		exit 2
		;;
	esac
done

have_redis() { command -v redis-server >/dev/null 2>&1; }
# redis-cli creates the test clusters (redis-cli --cluster create); Debian ships
# it in redis-tools, which redis-server depends on, but a hand-built server may
# come without it.
have_redis_cli() { command -v redis-cli >/dev/null 2>&1; }

# Same search order as internal/pgtest: PATH, then /usr/lib/postgresql/*/bin.
have_postgres() {
	if command -v postgres >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
		return 0
	fi
	local dir
	for dir in /usr/lib/postgresql/*/bin; do
		[[ -x "$dir/postgres" && -x "$dir/initdb" ]] && return 0
	done
	return 1
}

have_compose() { command -v docker-compose >/dev/null 2>&1; }

# Same search as internal/browsertest: CHROMIUM_PATH, then PATH.
have_chromium() {
	if [[ -n ${CHROMIUM_PATH:-} ]]; then
		[[ -x $CHROMIUM_PATH ]]
		return
	fi
	local name
	for name in chromium chromium-browser google-chrome google-chrome-stable; do
		command -v "$name" >/dev/null 2>&1 && return 0
	done
	return 1
}

missing=() # apt package names
$want_redis && ! have_redis && missing+=(redis-server)
$want_redis && have_redis && ! have_redis_cli && missing+=(redis-tools)
$want_postgres && ! have_postgres && missing+=(postgresql-15)
$want_chromium && ! have_chromium && missing+=(chromium)
$want_compose && ! have_compose && missing+=(docker-compose)

[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
	echo "ensure-deps: missing ${missing[*]}; install as root, for example:" >&2
	echo "  sudo apt-get install -y ${missing[*]}" >&2
	echo "(postgresql-15 provides /usr/lib/postgresql/15/bin; any PostgreSQL with postgres and initdb in PATH also works)" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-deps: missing ${missing[*]} and apt-get is not available; install them with your package manager" >&2
	exit 1
fi

echo "ensure-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
for pkg in "${missing[@]}"; do
	if [[ $pkg == postgresql-15 ]] && ! apt-cache show postgresql-15 >/dev/null 2>&1; then
		# Not Debian 12: take the distribution's default major version.
		pkg=postgresql
	fi
	apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
done

failed=()
$want_redis && ! have_redis && failed+=(redis-server)
$want_redis && ! have_redis_cli && failed+=(redis-tools)
$want_postgres && ! have_postgres && failed+=(postgresql)
$want_chromium && ! have_chromium && failed+=(chromium)
$want_compose && ! have_compose && failed+=(docker-compose)
if [[ ${#failed[@]} -gt 0 ]]; then
	echo "ensure-deps: ${failed[*]} still missing after apt-get install" >&2
	exit 1
fi
echo "ensure-deps: installed"
