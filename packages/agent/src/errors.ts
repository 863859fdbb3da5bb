/**
 * The agent's error codes, each with what happened and what to do: docs/errors.md documents every one (a test
 * keeps the two equal). A code is printed at the end of its stderr line, `ekg-agent: <message> (<CODE>)`, and is
 * never reused for another meaning.
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
  EKG_AGENT_ERR_STORE_LOST: {
    what: 'at exit, windows the store could not write (a full disk, a size cap) were still held in memory and are lost',
    do: 'free disk space or raise --store-max-size; the store logged why when it began holding windows',
  },
} as const;

export type AgentErrorCode = keyof typeof codes;

/** A line for stderr: `ekg-agent: <message> (<CODE>)`. */
export const errorLine = (code: AgentErrorCode, message: string): string => `ekg-agent: ${message} (${code})\n`;

/** A setting the agent cannot start with: the CLI prints its message and code and exits 2. */
export class ConfigError extends Error {
  constructor(
    message: string,
    readonly code: AgentErrorCode = 'EKG_AGENT_ERR_BAD_OPTION',
  ) {
    super(message);
  }
}
