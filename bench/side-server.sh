#!/usr/bin/env bash
# The side server (EKG_PORT) against its peers, pinned: the server (both of its threads) on core 0,
# autocannon on core 1. Rounds alternate so that a busy machine hurts every column alike.
#   bench/side-server.sh [rounds=3] [seconds=8] [register.js of a build to compare, e.g. an older dist]
# Run `npm run build` first. Prints one line per measurement: what, req/s, p99 latency; then, for a fixed
# 50,000 requests, the process's CPU time per request and the main thread's busy time per request (its event-loop
# utilization), which a busy machine disturbs far less than req/s.
set -u
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SECS=${2:-8}
OTHER=${3:-}
AC=node_modules/.bin/autocannon
PORT=$((20000 + ($$ % 400) * 30)) # a range of its own per run, below the ephemeral ports

measure() { # name url
  taskset -c 1 "$AC" -c 20 -d "$SECS" -j "$2" 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>{const j=JSON.parse(s);console.log(`${process.argv[1].padEnd(34)} ${String(Math.round(j.requests.average)).padStart(7)} req/s  p99 ${j.latency.p99} ms  non-2xx ${j.non2xx}  errors ${j.errors}`)})' "$1"
}

wait_for() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return; sleep 0.1; done; }

side() { # label register.js path
  PORT=$((PORT + 1))
  EKG_PORT=$PORT EKG_INTERVAL=1s taskset -c 0 node --import "$2" -e 'setInterval(() => {}, 1e9)' &
  local app=$!
  wait_for "http://127.0.0.1:$PORT/heartbeat"
  sleep 1.5 # the first window closes: its pages are posted to the side server
  measure "$1 EKG_PORT $3" "http://127.0.0.1:$PORT$3"
  kill $app && wait $app 2>/dev/null
}

cpu() { # label register.js path
  PORT=$((PORT + 1))
  local n=50000 out
  out=$(mktemp)
  EKG_PORT=$PORT EKG_INTERVAL=10s taskset -c 0 node --import "$2" -e '
    process.on("SIGUSR1", () => { const c = process.cpuUsage(); console.log(JSON.stringify({ cpu: c.user + c.system, busy: performance.eventLoopUtilization().active })); });
    setInterval(() => {}, 1e9);' >"$out" &
  local app=$!
  wait_for "http://127.0.0.1:$PORT/heartbeat"
  sleep 10.5 # the first window closes
  kill -USR1 $app && sleep 0.3
  taskset -c 1 "$AC" -c 20 -a $n "http://127.0.0.1:$PORT$3" >/dev/null 2>&1
  kill -USR1 $app && sleep 0.3
  kill $app && wait $app 2>/dev/null
  node -e 'const [a, b] = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse); const n = Number(process.argv[2]);
    console.log(`${process.argv[3].padEnd(34)} process CPU ${((b.cpu - a.cpu) / n).toFixed(1)} µs/req  main thread busy ${(((b.busy - a.busy) * 1000) / n).toFixed(1)} µs/req`)' "$out" $n "$1 EKG_PORT $3"
  rm -f "$out"
}

peer() { # kind path
  PORT=$((PORT + 1))
  taskset -c 0 node --input-type=module -e "
    import { createServer } from 'node:http';
    let handler = (req, res) => res.end('ok');
    if ('$1' === 'prom-client') {
      const { default: client } = await import('prom-client');
      client.collectDefaultMetrics();
      handler = async (req, res) => { const body = await client.register.metrics(); res.writeHead(200, { 'content-type': client.register.contentType }); res.end(body); };
    }
    createServer(handler).listen($PORT, '127.0.0.1');" &
  local app=$!
  wait_for "http://127.0.0.1:$PORT$2"
  measure "$1 $2" "http://127.0.0.1:$PORT$2"
  kill $app && wait $app 2>/dev/null
}

echo "node $(node -v), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  echo "round $r"
  for p in /metrics /heartbeat; do
    side ekg ./packages/ekg/dist/register.js $p
    [ -n "$OTHER" ] && side other "$OTHER" $p
  done
  peer hello /
  peer prom-client /metrics
done
echo "CPU per request"
for p in /metrics /heartbeat; do
  cpu ekg ./packages/ekg/dist/register.js $p
  [ -n "$OTHER" ] && cpu other "$OTHER" $p
done
