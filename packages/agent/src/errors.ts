/**
 * The agent's error codes, each with what happened and what to do: docs/errors.md documents every one (a test
 * keeps the two equal). A code is printed at the end of its stderr line, `ekg-agent: <message> (<CODE>)`, and is
 * never reused for another meaning. This module is also the agent's one writer to stderr (`report`, `notice`):
 * a test refuses a direct `process.stderr.write` or `console.error` anywhere else in the agent's source.
 */
export const codes = {
  EKG_AGENT_ERR_BAD_OPTION: {
    what: 'a flag, EKG_AGENT_* variable or YAML value the agent cannot use; the line names the option, where it came from and the forms it takes',
    do: 'fix the value; the forms are in docs/agent-config.md',
  },
  EKG_AGENT_ERR_UNKNOWN_OPTION: {
    what: 'a flag or YAML key the agent does not know',
    do: 'check its spelling against ekg-agent --help or the known keys the line lists',
  },
  EKG_AGENT_ERR_CONFIG_FILE: {
    what: 'the YAML file cannot be read or is not valid YAML; the line names the file and line',
    do: 'fix the file, or the --config / EKG_AGENT_CONFIG path',
  },
  EKG_AGENT_ERR_SECRET: {
    what: 'a token or API key named by an *_env or *_file setting is missing, unreadable or empty',
    do: 'set the variable or write the file the setting names',
  },
  EKG_AGENT_ERR_START: {
    what: 'the agent could not start: an address in use, a data directory held by another agent, a store that does not open',
    do: 'free the address or pick another (--statsd, --http), stop the other agent, or fix the data directory',
  },
  EKG_AGENT_ERR_HTTP: {
    what: 'an HTTP request failed unexpectedly; it was answered 500 and the agent kept serving (once per kind of error)',
    do: 'report it with the line: it is a bug',
  },
  EKG_AGENT_ERR_EXPORT: {
    what: 'an exporter cannot send, or its target refused a batch; the batches wait in its spool (one line when it starts failing)',
    do: "check the target's address and credentials; ekg_agent_exporter_* in /metrics count what waits and what was set aside",
  },
  EKG_AGENT_ERR_SCRAPE: {
    what: 'a scrape target is failing; one line when it starts and one when it is back',
    do: 'check that the target is up and its URL; /api/v1/self has the last failure of each target',
  },
  EKG_AGENT_ERR_LISTEN: {
    what: 'a listener (StatsD UDP, TCP or Unix socket, HTTP) cannot bind its address: in use, not on this host, or a port below 1024',
    do: 'stop what holds the address or pick another (--statsd, --statsd-unix, --http, or off)',
  },
  EKG_AGENT_ERR_DATA_DIR: {
    what: 'the data directory is held by another ekg-agent, or it (or a file in it) cannot be created or written',
    do: 'stop the other agent, make the directory writable for this user, or choose another --data directory',
  },
  EKG_AGENT_ERR_STORE: {
    what: 'the store cannot write its file (a full disk, --store-max-size); windows are held in memory meanwhile (one line when it starts and one when it writes again)',
    do: 'free disk space or raise --store-max-size; /api/v1/self has store.error and windows_held',
  },
  EKG_AGENT_ERR_NOTIFY: {
    what: 'an alert notifier cannot deliver, or its target refused a notification; notifications wait in its spool (one line when it starts and one when it sends again)',
    do: "check the notifier's URL and key; /api/v1/alerts lists each notifier's state",
  },
  EKG_AGENT_ERR_ALERTS: {
    what: 'an alert evaluation failed, or the alert state file cannot be read (the states start afresh)',
    do: 'report an evaluation failure with the line: it is a bug; an unreadable state file is replaced at the next change',
  },
  EKG_AGENT_ERR_RUN_COMMAND: {
    what: 'ekg-agent run was given no command after --, or the command cannot be started',
    do: 'write the command after --, and check that it exists and is executable',
  },
  EKG_AGENT_ERR_RUN_AGENT: {
    what: 'under ekg-agent run, the agent did not start or exited; the app runs on and the agent is started again with backoff',
    do: "read the agent's own line just above, which says why",
  },
  EKG_AGENT_ERR_RUN_KILLED: {
    what: 'under ekg-agent run, the app had not exited --kill-after (default 10s) after SIGTERM or SIGINT, and was killed',
    do: 'make the app exit sooner on SIGTERM, or raise --kill-after',
  },
  EKG_AGENT_ERR_STOP: {
    what: 'stopping on SIGTERM or SIGINT failed; the open window may not have reached every sink; exit 1',
    do: 'read the reason in the line; the store and the spools keep what they had written',
  },
  EKG_AGENT_ERR_CRASH: {
    what: 'an error the agent did not expect stopped it (exit 1); the line carries its stack, frames joined by " | "',
    do: 'report it with the line: it is a bug; restart the agent (the store and the spools keep what they had written)',
  },
  EKG_AGENT_ERR_STORE_LOST: {
    what: 'at exit, windows the store could not write (a full disk, a size cap) were still held in memory and are lost',
    do: 'free disk space or raise --store-max-size; the store logged why when it began holding windows',
  },
} as const;

export type AgentErrorCode = keyof typeof codes;

/** A line for stderr: `ekg-agent: <message> (<CODE>)` (`who`: `ekg-agent run` for the supervisor's lines). */
export const errorLine = (code: AgentErrorCode, message: string, who = 'ekg-agent'): string => `${who}: ${message} (${code})\n`;

/**
 * Prints an error line, or the end of the outage a line began (`… back after …`, with the same code, so that a
 * grep for the code finds both). Every error the agent prints goes through here.
 */
export function report(code: AgentErrorCode, message: string, who?: string): void {
  process.stderr.write(errorLine(code, message, who));
}

/** A line for stderr that is no error: an alert's change of state, what `ekg-agent run` did. */
export function notice(message: string, who = 'ekg-agent'): void {
  process.stderr.write(`${who}: ${message}\n`);
}

/** A setting the agent cannot start with: the CLI prints its message and code and exits 2. */
export class ConfigError extends Error {
  constructor(
    message: string,
    readonly code: AgentErrorCode = 'EKG_AGENT_ERR_BAD_OPTION',
  ) {
    super(message);
  }
}
