/** What livery asks of a BMC. `status` reads; the others change the machine's power. */
export const POWER_ACTIONS = ['status', 'on', 'off', 'cycle', 'reset'] as const;
export type PowerAction = (typeof POWER_ACTIONS)[number];
export type PowerState = 'on' | 'off';

/** One BMC protocol. Every call is bounded in time and throws a BmcError when the BMC refuses or is silent. */
export interface PowerDriver {
  /** How the BMC is named in errors and events: driver://user@address:port (never the password). */
  readonly label: string;
  status(): Promise<PowerState>;
  /** The next boot (only) from the network. */
  bootFromNetworkOnce(): Promise<void>;
  /** on, off (hard), cycle (off then on), reset (hard restart). */
  power(action: Exclude<PowerAction, 'status'>): Promise<void>;
}

/** A BMC that refused, failed or did not answer; the message names it and says what it answered. */
export class BmcError extends Error {
  override name = 'BmcError';
  constructor(
    readonly bmc: string,
    readonly detail: string,
    /** False when trying again cannot help (wrong credentials, unsupported request). */
    readonly retryable: boolean,
    /**
     * True when the request reached the BMC but no answer came back (a timeout after sending,
     * a 5xx): it may have been carried out, so a power cycle or reset is not sent again.
     */
    readonly mayHaveActed = false,
  ) {
    super(`BMC ${bmc}: ${detail}`);
  }
}

/**
 * The BMC answered, but would not set the next boot to the network (some refuse the boot
 * parameter altogether). The power action can still go ahead: a diskless machine whose boot
 * order starts with its NIC boots from livery anyway; the result carries the refusal.
 */
export class BootOverrideRefused extends BmcError {
  override name = 'BootOverrideRefused';
  constructor(bmc: string, detail: string) {
    super(bmc, detail, false);
  }
}

/** Bounds for one BMC call (config `power`). */
export interface DriverLimits {
  timeoutMs: number;
}

/** The IPMI driver's settings (config `power`). */
export interface IpmiSettings extends DriverLimits {
  /** The ipmitool command, with any words that run it (e.g. `ip netns exec NS ipmitool`), space-separated. */
  ipmitool: string;
  ipmiCipherSuite: number;
}
