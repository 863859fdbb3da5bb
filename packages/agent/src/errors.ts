/** A setting the agent cannot start with: the CLI prints its message and exits 2. */
export class ConfigError extends Error {}
