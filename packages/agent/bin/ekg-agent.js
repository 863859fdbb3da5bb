#!/bin/sh
':' /*
# Run as a program (npm's bin link, npx, systemd, the image's entry point) this file is a shell script: it starts
# Node on itself with the agent's memory settings (docs/agent-store.md#memory), each unless the user has set it,
# and Node replaces the shell (exec): one process, whose signals, stdio and exit code are Node's. Run by Node
# (`node bin/ekg-agent.js`) it is the JavaScript after this comment, and the settings are the user's to give.
# glibc: a fixed mmap threshold keeps the blocks of MBs the agent allocates and frees each window out of the brk heap,
# where they fragment and stay; unless the user has set it, by this name or as a tunable
EKG_AGENT_MALLOC=
case "${MALLOC_MMAP_THRESHOLD_+x}:$GLIBC_TUNABLES" in
x:* | *glibc.malloc.mmap_threshold*) ;;
*) export MALLOC_MMAP_THRESHOLD_=131072 && EKG_AGENT_MALLOC=MALLOC_MMAP_THRESHOLD_ ;;
esac
# what was set here, which the agent takes out of its environment: what it starts does not inherit it
export EKG_AGENT_MALLOC
# V8's young generation: 2 × 16 MB by default, 2 × 2 MB here; only a flag on Node's command line or in NODE_OPTIONS sets it
case "$NODE_OPTIONS" in
*--max?semi?space?size*) exec node "$0" "$@" ;;
*) exec node --max-semi-space-size=2 "$0" "$@" ;;
esac
*/ + ''; // an expression to the formatter, which then leaves ':' /* as the shell needs it, on one line
// Kept outside dist/ so that npm links the bin at install time, before the build has run.
for (const name of (process.env.EKG_AGENT_MALLOC ?? '').split(' ')) if (name) delete process.env[name];
delete process.env.EKG_AGENT_MALLOC;
await import('../dist/cli.js');
