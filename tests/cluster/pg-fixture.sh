#!/bin/sh
# pg-fixture.sh start|stop STATE_DIR: the CTest fixture for the cluster
# tests. start picks a free loopback port, starts a PostgreSQL in a new
# temp directory with scripts/pg-start, and writes STATE_DIR/pg.dsn,
# STATE_DIR/pg.dir and STATE_DIR/pg.port for the tests; stop stops it
# and removes the temp directory. Needs root (the server runs as postgres).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cmd=${1:-}
state=${2:-}
if [ -z "$cmd" ] || [ -z "$state" ]; then
	echo "usage: $0 start|stop STATE_DIR" >&2
	exit 2
fi
mkdir -p "$state"
case $cmd in
start)
	if [ -s "$state/pg.dir" ]; then
		# A previous run that was not cleaned up.
		"$top/scripts/pg-stop" "$(cat "$state/pg.dir")" || true
		rm -rf "$(cat "$state/pg.dir")"
	fi
	port=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
	dir=$(mktemp -d /tmp/credd-pg.XXXXXX)
	echo "$dir" >"$state/pg.dir"
	echo "$port" >"$state/pg.port"
	"$top/scripts/pg-start" "$dir" "$port" >"$state/pg.dsn.tmp"
	mv "$state/pg.dsn.tmp" "$state/pg.dsn"
	echo "PostgreSQL in $dir on 127.0.0.1:$port"
	;;
stop)
	if [ -s "$state/pg.dir" ]; then
		dir=$(cat "$state/pg.dir")
		"$top/scripts/pg-stop" "$dir"
		rm -rf "$dir"
	fi
	rm -f "$state/pg.dir" "$state/pg.port" "$state/pg.dsn"
	;;
*)
	echo "usage: $0 start|stop STATE_DIR" >&2
	exit 2
	;;
esac
