#!/usr/bin/env bash
# run-local.sh runs notionsync on this machine against real Notion: one
# scheduler (control plane on NOTIONSYNC_CONTROL_ADDR) and WORKERS workers,
# configured from your environment, plus a local redis-server when
# NOTIONSYNC_REDIS_URL is not set. `make run` builds the binaries and calls it.
#
#   NOTIONSYNC_NOTION_CLIENT_ID=... NOTIONSYNC_NOTION_CLIENT_SECRET=... \
#   NOTIONSYNC_TOKEN_KEYS=k1:$(openssl rand -base64 32) \
#   NOTIONSYNC_ADMIN_TOKEN=$(openssl rand -hex 32) make run
#
# Settings of this script (environment):
#   BIN_DIR      where the binaries are (default bin)
#   WORKERS      number of workers (default 2)
#   RUN_DIR      logs/ and redis/ go here (default run-data)
#   RUN_REDIS_PORT        port of the local redis-server (default 6380)
#   RUN_WORKER_BASE_PORT  worker i serves health and metrics on base+i (default 8081)
# Every NOTIONSYNC_* variable is passed through (scheduler --help-env and
# worker --help-env list them). Ctrl-C stops the workers (they hand
# unfinished tasks back), the scheduler, then Redis. The processes run in
# their own process groups: if this script is killed with SIGKILL, stop them
# by hand (their pids are printed).
set -euo pipefail
set -m # background jobs get their own process groups: Ctrl-C reaches this script only

BIN_DIR=${BIN_DIR:-bin}
WORKERS=${WORKERS:-2}
RUN_DIR=${RUN_DIR:-run-data}
RUN_REDIS_PORT=${RUN_REDIS_PORT:-6380}
RUN_WORKER_BASE_PORT=${RUN_WORKER_BASE_PORT:-8081}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() {
	echo "run-local: $*" >&2
	exit 2
}

missing=()
for v in NOTIONSYNC_NOTION_CLIENT_ID NOTIONSYNC_NOTION_CLIENT_SECRET NOTIONSYNC_TOKEN_KEYS NOTIONSYNC_ADMIN_TOKEN; do
	[[ -n ${!v:-} ]] || missing+=("$v")
done
if [[ ${#missing[@]} -gt 0 ]]; then
	cat >&2 <<EOF
run-local: missing ${missing[*]}

  NOTIONSYNC_NOTION_CLIENT_ID, NOTIONSYNC_NOTION_CLIENT_SECRET
      OAuth client id and secret of your Notion public integration
      (https://www.notion.so/profile/integrations).
  NOTIONSYNC_TOKEN_KEYS
      key that encrypts the tokens in Redis, id:base64 of 32 bytes, e.g.
      k1:\$(openssl rand -base64 32). Keep it: tokens stored under it are
      unreadable without it.
  NOTIONSYNC_ADMIN_TOKEN
      credential of the admin API and asynqmon (16+ characters), e.g.
      \$(openssl rand -hex 32).

The redirect URI registered with the integration must be
NOTIONSYNC_NOTION_REDIRECT_URI (default: NOTIONSYNC_PUBLIC_URL/oauth/callback,
with NOTIONSYNC_PUBLIC_URL defaulting to http://localhost:<control port>).
Try the whole system without Notion first: make demo.
EOF
	exit 2
fi
[[ $WORKERS =~ ^[1-9][0-9]*$ ]] || die "WORKERS must be a positive number, not '$WORKERS'"
for b in scheduler worker; do
	[[ -x $BIN_DIR/$b ]] || die "$BIN_DIR/$b not found; run make build (or make run)"
done

export NOTIONSYNC_CONTROL_ADDR=${NOTIONSYNC_CONTROL_ADDR:-127.0.0.1:8080}
export NOTIONSYNC_PUBLIC_URL=${NOTIONSYNC_PUBLIC_URL:-http://localhost:${NOTIONSYNC_CONTROL_ADDR##*:}}
export NOTIONSYNC_NOTION_REDIRECT_URI=${NOTIONSYNC_NOTION_REDIRECT_URI:-${NOTIONSYNC_PUBLIC_URL%/}/oauth/callback}
export NOTIONSYNC_LOG_FORMAT=${NOTIONSYNC_LOG_FORMAT:-console}

log_dir=$RUN_DIR/logs
mkdir -p "$log_dir"
app_pids=()
redis_pid=""
tail_pid=""

stop() {
	trap - INT TERM
	echo "run-local: stopping (workers hand unfinished tasks back)"
	if [[ ${#app_pids[@]} -gt 0 ]]; then
		kill -TERM "${app_pids[@]}" 2>/dev/null || true
		for pid in "${app_pids[@]}"; do
			wait "$pid" 2>/dev/null || true
		done
	fi
	if [[ -n $redis_pid ]]; then
		kill -TERM "$redis_pid" 2>/dev/null || true
		wait "$redis_pid" 2>/dev/null || true
	fi
	if [[ -n $tail_pid ]]; then
		kill "$tail_pid" 2>/dev/null || true
		wait "$tail_pid" 2>/dev/null || true
	fi
	echo "run-local: stopped; logs in $log_dir"
}
trap 'stop; exit 0' INT TERM

# redis_ping succeeds when a Redis server answers PING on 127.0.0.1:$1.
redis_ping() {
	local reply
	{ exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
	printf 'PING\r\n' >&3
	IFS= read -r -t 1 reply <&3 || reply=""
	exec 3>&-
	[[ $reply == "+PONG"* ]]
}

if [[ -z ${NOTIONSYNC_REDIS_URL:-} ]]; then
	"$here/ensure-deps.sh" redis
	if redis_ping "$RUN_REDIS_PORT"; then
		die "something already answers on 127.0.0.1:$RUN_REDIS_PORT; set RUN_REDIS_PORT or NOTIONSYNC_REDIS_URL"
	fi
	mkdir -p "$RUN_DIR/redis"
	redis-server --port "$RUN_REDIS_PORT" --bind 127.0.0.1 --dir "$RUN_DIR/redis" --daemonize no \
		--appendonly yes --appendfsync always --save "" >>"$log_dir/redis.log" 2>&1 &
	redis_pid=$!
	for _ in $(seq 100); do
		redis_ping "$RUN_REDIS_PORT" && break
		kill -0 "$redis_pid" 2>/dev/null || break
		sleep 0.1
	done
	if ! redis_ping "$RUN_REDIS_PORT"; then
		tail -n 20 "$log_dir/redis.log" >&2 || true
		stop
		die "redis-server did not start on 127.0.0.1:$RUN_REDIS_PORT (log above)"
	fi
	export NOTIONSYNC_REDIS_URL=redis://127.0.0.1:$RUN_REDIS_PORT/0
	echo "run-local: redis-server on 127.0.0.1:$RUN_REDIS_PORT (pid $redis_pid, data in $RUN_DIR/redis)"
fi

"$BIN_DIR/scheduler" >>"$log_dir/scheduler.log" 2>&1 &
app_pids+=($!)
echo "run-local: scheduler (pid $!) on $NOTIONSYNC_CONTROL_ADDR, metrics on ${NOTIONSYNC_METRICS_ADDR:-127.0.0.1:9090}"
for ((i = 0; i < WORKERS; i++)); do
	NOTIONSYNC_HTTP_ADDR=127.0.0.1:$((RUN_WORKER_BASE_PORT + i)) "$BIN_DIR/worker" >>"$log_dir/worker-$i.log" 2>&1 &
	app_pids+=($!)
	echo "run-local: worker-$i (pid $!) health and metrics on 127.0.0.1:$((RUN_WORKER_BASE_PORT + i))"
done

cat <<EOF
run-local: connect a workspace: ${NOTIONSYNC_PUBLIC_URL%/}/oauth/start
           (redirect URI registered with Notion: $NOTIONSYNC_NOTION_REDIRECT_URI)
run-local: admin API ${NOTIONSYNC_PUBLIC_URL%/}/api/v1/connections (Authorization: Bearer \$NOTIONSYNC_ADMIN_TOKEN)
run-local: asynqmon  ${NOTIONSYNC_PUBLIC_URL%/}/admin/asynqmon/ (password: the admin token)
run-local: logs in $log_dir (following them below); Ctrl-C stops everything
EOF
tail -n +1 -F "$log_dir/scheduler.log" "$log_dir"/worker-*.log &
tail_pid=$!

# Wait until a process exits by itself (or a signal runs the trap).
set +e
wait -n "${app_pids[@]}"
status=$?
set -e
echo "run-local: a process exited (status $status); see $log_dir" >&2
stop
exit 1
