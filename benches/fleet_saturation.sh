#!/usr/bin/env bash
# Where the fleet pipeline saturates: mosquitto, the load generator (examples/mqtt_load.rs),
# `smartmeter collect` (one or several in one --group) and PostgreSQL, on this machine.
#
# For each number of meters N in $STEPS, with a 1-s status interval (3 rows per message):
#   - starts $COLLECTORS collectors (Parquet or PostgreSQL, --json, --metrics) and $LOADGENS load
#     generators publishing N status messages per second in total for $DURATION seconds;
#   - over the steady window (after $WARMUP s) measures the rows/s the collectors receive (their
#     `smartmeter_collector_messages_total` counters), the CPU of every process (utime+stime
#     deltas from /proc/<pid>/stat, % of one core; postgres = postmaster + all its children) and
#     the machine's busy cores (/proc/stat), and samples memory every second (peak VmRSS; for
#     postgres the sum of Pss, so shared buffers count once);
#   - after the load ends waits until the collectors stop receiving, stops them with SIGINT (they
#     flush) and counts the rows stored (the collectors' `stopped` lines; PostgreSQL: count(*)).
# Prints one table row per step; the `limit` column names what fell short: `load` (the generator
# published < 95 % of N msg/s), `recv` (collectors received < 97 % of what was published in the
# window), `lost` (> 0.1 % of the published rows not stored), `broker` (mosquitto ≥ 90 % of a
# core), `cores` (the machine ≥ 95 % busy).
#
# Usage (build first: cargo build --release --features cli --bin smartmeter --example mqtt_load):
#   benches/fleet_saturation.sh                                   # Parquet, 1 collector
#   SINK=postgres benches/fleet_saturation.sh                     # PostgreSQL (initdb in a temp dir)
#   COLLECTORS=2 STEPS="40000 60000" benches/fleet_saturation.sh  # 2 collectors in one --group
# Environment: SINK (parquet|postgres), STEPS ("20000 40000 60000 80000"), DURATION (30),
# WARMUP (6), COLLECTORS (1), LOADGENS (1), CLIENTS (MQTT connections per generator, 4),
# QUEUE (mosquitto max_queued_messages per client, 100000), BIN, LOAD (the two binaries),
# KEEP=1 keeps the temp dir.
#
# Measured 2026-12-07 on the 2-core CI machine, idle otherwise (load1 < 3.2 before every step),
# 30-s steps, rows/s stored (3 rows per message), CPU % of one core / memory MB:
#   Parquet, 1 collector: 20k meters 60k rows/s (collector 11 %/46 MB, mosquitto 11 %/8 MB);
#     100k meters 301k rows/s (collector 41 %/104 MB, mosquitto 48 %, machine 58 % busy);
#     150k meters 452k rows/s, nothing lost (collector 63 %/136 MB, mosquitto 74 %, machine 87 %);
#     200k+ meters: the two cores are full (90-93 %): the generator reaches only 486k rows/s and
#     2-4 % of the rows are lost before the collector.
#   PostgreSQL, 1 collector: 100k meters 300k rows/s, nothing lost (collector 50 %/113 MB, postgres
#     25 %/161 MB Pss, mosquitto 50 %, machine 76 %); 150k meters: cores 95 % busy, 3.4 % lost.
#   2 collectors in one group: Parquet 299k rows/s at 100k meters (collectors 80 % together),
#     ceiling 345k rows/s; PostgreSQL ceiling 260-280k rows/s: on 2 cores a second collector
#     costs more CPU (and mosquitto's shared-subscription dispatch) than it adds.
set -euo pipefail
cd "$(dirname "$0")/.."

SINK=${SINK:-parquet}
STEPS=${STEPS:-"20000 40000 60000 80000"}
DURATION=${DURATION:-30}
WARMUP=${WARMUP:-6}
COLLECTORS=${COLLECTORS:-1}
LOADGENS=${LOADGENS:-1}
CLIENTS=${CLIENTS:-4}
QUEUE=${QUEUE:-100000}
BIN=${BIN:-target/release/smartmeter}
LOAD=${LOAD:-target/release/examples/mqtt_load}
HZ=$(getconf CLK_TCK)

for b in "$BIN" "$LOAD"; do
    [[ -x $b ]] || { echo "missing $b: cargo build --release --features cli --bin smartmeter --example mqtt_load" >&2; exit 2; }
done
command -v mosquitto >/dev/null || { echo "mosquitto not installed" >&2; exit 2; }
BIN=$(realpath "$BIN"); LOAD=$(realpath "$LOAD")

TMP=$(mktemp -d /tmp/fleet-sat.XXXXXX)
chmod 755 "$TMP"
PIDS=()          # everything we started, stopped on exit
PG_BIN="" PG_DATA="" PG_PORT="" RUN_AS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    if [[ -n $PG_DATA ]]; then "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1 || true; fi
    [[ ${KEEP:-0} == 1 ]] && echo "kept $TMP" >&2 || rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- per-process measurements -------------------------------------------------------------------
ticks() { # utime+stime of the pids given, summed (field 14+15; comm has no spaces here)
    local t=0 p
    for p in "$@"; do
        [[ -r /proc/$p/stat ]] || continue
        t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
pss_kb() { # sum of Pss over the pids
    local t=0 p
    for p in "$@"; do t=$((t + $(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0))); done
    echo "$t"
}
pg_pids() { [[ -n $PG_PID ]] && { echo "$PG_PID"; ps -o pid= --ppid "$PG_PID"; } | tr -s ' \n' ' ' || true; }
busy_idle() { awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat; }   # busy idle (jiffies)
counter() { # sum of one metric over the collectors' endpoints
    local t=0 port v
    for port in "${MPORTS[@]}"; do
        v=$(curl -s "http://127.0.0.1:$port/metrics" | awk -v n="$1" '$1==n{print $2}')
        t=$(python3 -c "print(int($t + float(${v:-0})))")
    done
    echo "$t"
}

# ---- mosquitto ----------------------------------------------------------------------------------
MQ_PORT=$(free_port)
cat >"$TMP/mosquitto.conf" <<EOF
listener $MQ_PORT 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages $QUEUE
max_inflight_messages 0
EOF
mosquitto -c "$TMP/mosquitto.conf" >"$TMP/mosquitto.log" 2>&1 &
MQ_PID=$!; PIDS+=("$MQ_PID")
sleep 0.5

# ---- PostgreSQL (a throwaway cluster, as tests/collect.rs) ----------------------------------------
PG_PID=""
if [[ $SINK == postgres ]]; then
    PG_BIN=$(pg_config --bindir 2>/dev/null || true)
    [[ -x $PG_BIN/initdb ]] || PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    [[ $(id -u) == 0 ]] && { RUN_AS=(runuser -u postgres --); chown postgres "$TMP"; }
    PG_DATA=$TMP/pg; PG_PORT=$(free_port)
    "${RUN_AS[@]}" "$PG_BIN/initdb" -D "$PG_DATA" -U smartmeter --auth=trust -E UTF8 --no-sync >/dev/null
    "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$TMP/pg.log" -w -t 60 \
        -o "-p $PG_PORT -k $TMP -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    PG_PID=$(head -1 "$PG_DATA/postmaster.pid")
    PG_URL="postgres://smartmeter@127.0.0.1:$PG_PORT/postgres"
    psqlq() { "$PG_BIN/psql" -X -A -t -q -d "$PG_URL" -c "$1"; }
fi

echo "# $(nproc) cores, $(uname -r), mosquitto $(mosquitto -h | awk 'NR==1{print $3}'), sink=$SINK, collectors=$COLLECTORS, loadgens=$LOADGENS x $CLIENTS connections, ${DURATION}s per step (window ${WARMUP}s..$((DURATION - 2))s), max_queued_messages=$QUEUE"
printf '%-7s %-6s %8s %8s %8s %8s %6s | %-10s %-10s %-10s %-10s | %5s | %s\n' \
    meters load1 offered recv/s stored/s lost% drain_s "mosq%/MB" "load%/MB" "coll%/MB" "pg%/MB" busy% limit

for N in $STEPS; do
    LOAD1=$(awk '{print $1}' /proc/loadavg)
    # Collectors.
    CPIDS=() MPORTS=()
    if [[ $SINK == postgres ]]; then psqlq "DROP TABLE IF EXISTS readings, pq_intervals, pq_events CASCADE" >/dev/null 2>&1 || true; fi
    for c in $(seq 1 "$COLLECTORS"); do
        mp=$(free_port); MPORTS+=("$mp")
        args=(collect --mqtt "127.0.0.1:$MQ_PORT" --json --metrics "127.0.0.1:$mp")
        [[ $COLLECTORS -gt 1 ]] && args+=(--group sat)
        if [[ $SINK == postgres ]]; then args+=(--postgres "$PG_URL" --out "$TMP/spool-$N-$c")
        else args+=(--out "$TMP/out-$N-$c"); fi
        "$BIN" "${args[@]}" >"$TMP/collect-$N-$c.log" 2>&1 &
        CPIDS+=($!); PIDS+=($!)
    done
    for c in $(seq 1 "$COLLECTORS"); do
        for _ in $(seq 100); do grep -q '"event":"subscribed"' "$TMP/collect-$N-$c.log" && break; sleep 0.1; done
    done
    # PostgreSQL backends appear with the collectors' connections.
    sleep 1
    # Load generators.
    LPIDS=()
    for g in $(seq 1 "$LOADGENS"); do
        "$LOAD" --broker "127.0.0.1:$MQ_PORT" --meters $((N / LOADGENS)) --interval 1s --duration "${DURATION}s" \
            --clients "$CLIENTS" --prefix "lg$g" >"$TMP/load-$N-$g.out" 2>"$TMP/load-$N-$g.err" &
        LPIDS+=($!); PIDS+=($!)
    done
    T_START=$(date +%s.%N)
    sleep "$WARMUP"
    # Window start.
    PGP=($(pg_pids))
    m0=$(ticks "$MQ_PID"); l0=$(ticks "${LPIDS[@]}"); c0=$(ticks "${CPIDS[@]}"); p0=$(ticks "${PGP[@]}")
    read -r b0 i0 < <(busy_idle)
    r0=$(counter smartmeter_collector_messages_total); w0=$(date +%s.%N)
    mr=0 lr=0 cr=0 pr=0
    end=$(python3 -c "print($T_START + $DURATION - 2)")
    while python3 -c "import sys,time; sys.exit(0 if time.time() < $end else 1)"; do
        v=$(rss_kb "$MQ_PID"); ((v > mr)) && mr=$v
        v=0; for p in "${LPIDS[@]}"; do v=$((v + $(rss_kb "$p"))); done; ((v > lr)) && lr=$v
        v=0; for p in "${CPIDS[@]}"; do v=$((v + $(rss_kb "$p"))); done; ((v > cr)) && cr=$v
        if [[ -n $PG_PID ]]; then PGP=($(pg_pids)); v=$(pss_kb "${PGP[@]}"); ((v > pr)) && pr=$v; fi
        sleep 1
    done
    m1=$(ticks "$MQ_PID"); l1=$(ticks "${LPIDS[@]}"); c1=$(ticks "${CPIDS[@]}"); p1=$(ticks "${PGP[@]}")
    read -r b1 i1 < <(busy_idle)
    r1=$(counter smartmeter_collector_messages_total); w1=$(date +%s.%N)
    # Load ends; wait for the collectors to stop receiving (the broker's queues drain).
    for p in "${LPIDS[@]}"; do wait "$p" || true; done
    T_LOAD_END=$(date +%s.%N)
    last=-1; stable=0
    for _ in $(seq 120); do
        now=$(counter smartmeter_collector_messages_total)
        if [[ $now == "$last" ]]; then stable=$((stable + 1)); ((stable >= 3)) && break; else stable=0; fi
        last=$now; sleep 0.5
    done
    DRAIN=$(python3 -c "print(max(0.0, $(date +%s.%N) - $T_LOAD_END - 1.5))")
    received=$last
    for p in "${CPIDS[@]}"; do kill -INT "$p"; done
    for p in "${CPIDS[@]}"; do wait "$p" || true; done
    stored=0
    for c in $(seq 1 "$COLLECTORS"); do
        s=$(grep '"event":"stopped"' "$TMP/collect-$N-$c.log" | jq -r '.rows_written // 0' | tail -1)
        stored=$((stored + ${s:-0}))
    done
    if [[ $SINK == postgres ]]; then stored=$(psqlq "SELECT count(*) FROM readings"); fi
    sent=0 secs=0
    for g in $(seq 1 "$LOADGENS"); do
        sent=$((sent + $(jq -r .messages "$TMP/load-$N-$g.out")))
        secs=$(python3 -c "print(max($secs, $(jq -r .seconds "$TMP/load-$N-$g.out")))")
    done
    python3 - "$N" "$LOAD1" "$sent" "$secs" "$r0" "$r1" "$w0" "$w1" "$received" "$stored" "$DRAIN" \
        "$m0" "$m1" "$l0" "$l1" "$c0" "$c1" "$p0" "$p1" "$b0" "$b1" "$i0" "$i1" "$mr" "$lr" "$cr" "$pr" "$HZ" "$DURATION" "$SINK" <<'EOF'
import sys
a = sys.argv[1:]
n, load1 = int(a[0]), a[1]
sent, secs = int(a[2]), float(a[3])
r0, r1, w0, w1 = int(a[4]), int(a[5]), float(a[6]), float(a[7])
received, stored, drain = int(a[8]), int(a[9]), float(a[10])
m0, m1, l0, l1, c0, c1, p0, p1 = map(int, a[11:19])
b0, b1, i0, i1 = map(int, a[19:23])
mr, lr, cr, pr = (int(x) / 1024 for x in a[23:27])
hz, duration, sink = int(a[27]), int(a[28]), a[29]
win = w1 - w0
pct = lambda t0, t1: 100.0 * (t1 - t0) / hz / win
mos, lg, col, pg = pct(m0, m1), pct(l0, l1), pct(c0, c1), pct(p0, p1)
busy = 100.0 * (b1 - b0) / max(1, (b1 - b0) + (i1 - i0))
offered = 3 * sent / secs
recv = 3 * (r1 - r0) / win
lost = 100.0 * (3 * sent - stored) / max(1, 3 * sent)
stored_rate = stored / secs
limit = []
if sent / secs < 0.95 * n: limit.append("load")
if recv < 0.97 * min(offered, 3 * n): limit.append("recv")
if lost > 0.1: limit.append("lost")
if mos >= 90: limit.append("broker")
if busy >= 95: limit.append("cores")
f = lambda c, m: f"{c:4.0f}/{m:<5.0f}"
print(f"{n:<7} {load1:<6} {offered:8.0f} {recv:8.0f} {stored_rate:8.0f} {lost:6.2f} {drain:6.1f}  | "
      f"{f(mos, mr):<10} {f(lg, lr):<10} {f(col, cr):<10} {(f(pg, pr) if sink == 'postgres' else '-'):<10} | "
      f"{busy:5.0f} | {','.join(limit) or 'ok'}", flush=True)
EOF
    rm -rf "$TMP"/out-"$N"-* "$TMP"/spool-"$N"-*
    # Let the machine settle between steps.
    sleep 3
done
