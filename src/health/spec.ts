/**
 * A recipe's health checks, as the manifest carries them and the image's agent runs them. A
 * check is named by its recipe line (`unit sshd.service`, `command test -e /dev/kvm`), so a
 * failure report points straight back at the line that declared it.
 */
export interface HealthCheck {
  kind: 'unit' | 'command';
  /** The unit name, or the shell command line. */
  value: string;
}

export interface HealthSpec {
  /** How long the agent keeps retrying failing checks after the boot before it reports unhealthy. */
  timeoutSeconds: number;
  checks: HealthCheck[];
}

export const DEFAULT_HEALTH_TIMEOUT_SECONDS = 120;
export const MAX_HEALTH_TIMEOUT_SECONDS = 3600;

export const checkName = (c: HealthCheck): string => `${c.kind} ${c.value}`;

/**
 * The agent's config file (/etc/livery/health in the image): `timeout N`, then one check per
 * line as `unit NAME` or `command TEXT`. Command text is one line (the recipe parser refuses
 * newlines), so the agent reads it with `read -r` and never has to unquote anything.
 */
export function agentHealthConfig(spec: HealthSpec): string {
  return [`timeout ${spec.timeoutSeconds}`, ...spec.checks.map(checkName)].join('\n') + '\n';
}
