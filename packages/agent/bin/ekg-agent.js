#!/bin/sh
':' /*
# Run as a program (npm's bin link, npx, systemd, the image's entry point) this file is a shell script: it starts
# Node on itself with the agent's memory settings (docs/agent-store.md#memory), each unless the user has set it,
# and Node replaces the shell (exec): one process, whose signals, stdio and exit code are Node's. Run by Node
# (`node bin/ekg-agent.js`) it is the JavaScript after this comment, and the settings are the user's to give.
set=
# NAME VALUE TUNABLE: export NAME=VALUE unless NAME is set, or TUNABLE in GLIBC_TUNABLES
malloc() {
  eval "given=\${$1+x}"
  case "$given:$GLIBC_TUNABLES" in x:* | *"$3"*) ;; *) export "$1=$2" && set="$set $1" ;; esac
}
# glibc: a fixed mmap threshold keeps the per-window blocks of MBs out of the brk heap, where they fragment;
# two arenas instead of eight per core for the threads of Node, libuv and SQLite
malloc MALLOC_MMAP_THRESHOLD_ 131072 glibc.malloc.mmap_threshold
malloc MALLOC_ARENA_MAX 2 glibc.malloc.arena_max
# the names set here, which the agent takes out of its environment: what it starts does not inherit them
export EKG_AGENT_MALLOC="${set# }"
# V8's young generation: 2 × 16 MB by default; only a flag on Node's command line or in NODE_OPTIONS sets it
case "$NODE_OPTIONS" in
*--max?semi?space?size*) exec node "$0" "$@" ;;
*) exec node --max-semi-space-size=4 "$0" "$@" ;;
esac
*/ + ''; // an expression to the formatter, which then leaves ':' /* as the shell needs it, on one line
// Kept outside dist/ so that npm links the bin at install time, before the build has run.
for (const name of (process.env.EKG_AGENT_MALLOC ?? '').split(' ')) if (name) delete process.env[name];
delete process.env.EKG_AGENT_MALLOC;
await import('../dist/cli.js');
