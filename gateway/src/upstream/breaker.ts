/** 0 closed, 1 half-open, 2 open: the values of `gateway_upstream_circuit_state`. */
export const CIRCUIT_STATES = { closed: 0, 'half-open': 1, open: 2 } as const;

export type CircuitState = keyof typeof CIRCUIT_STATES;

export interface BreakerOptions {
  /** Consecutive failures that open the circuit; 0 never opens it. */
  readonly failureThreshold: number;
  /** How long an open circuit refuses calls before it lets one probe through. */
  readonly openMs: number;
  /** `requestId`: the call whose failure opened the circuit (or whose probe closed it). */
  readonly onStateChange?: (state: CircuitState, requestId?: string) => void;
  readonly now?: () => number;
}

/** What the breaker says to a call: go ahead (as the half-open probe, perhaps), or not for `retryAfterMs`. */
export type Admission = { readonly admitted: true; readonly probe: boolean } | { readonly admitted: false; readonly retryAfterMs: number };

/**
 * A consecutive-failure circuit breaker. Closed: calls pass, failures are counted, a success resets the
 * count; at the threshold it opens. Open: every call is refused at once until `openMs` has passed; then
 * exactly one call goes through as a probe (half-open) while the others are still refused. The probe's
 * success closes the circuit, its failure opens it again for another `openMs`.
 *
 * Why not a library: cockatiel's breaker makes concurrent callers wait for the half-open probe, and
 * opossum's opens on an error percentage over a rolling window; a gateway wants to shed at once.
 */
export class CircuitBreaker {
  private state: CircuitState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  private readonly now: () => number;

  constructor(private readonly options: BreakerOptions) {
    this.now = options.now ?? Date.now;
  }

  get current(): CircuitState {
    return this.state;
  }

  admit(): Admission {
    if (this.state === 'closed') return { admitted: true, probe: false };
    const waited = this.now() - this.openedAt;
    if (this.state === 'open' && waited >= this.options.openMs) this.moveTo('half-open');
    if (this.state === 'half-open' && !this.probing) {
      this.probing = true;
      return { admitted: true, probe: true };
    }
    return { admitted: false, retryAfterMs: Math.max(0, this.options.openMs - waited) };
  }

  /** The call reached the upstream and it answered well enough (below 500). */
  succeeded(probe: boolean, requestId?: string): void {
    if (probe) {
      this.probing = false;
      this.moveTo('closed', requestId);
    }
    if (this.state === 'closed') this.failures = 0;
  }

  /** The upstream failed the call: no answer, a timeout, a broken body or a 5xx. */
  failed(probe: boolean, requestId?: string): void {
    if (probe) {
      this.probing = false;
      this.open(requestId);
      return;
    }
    if (this.state !== 'closed' || this.options.failureThreshold === 0) return;
    this.failures += 1;
    if (this.failures >= this.options.failureThreshold) this.open(requestId);
  }

  /** The call ended without a verdict on the upstream (the client went away): a probe slot is freed. */
  released(probe: boolean): void {
    if (probe) this.probing = false;
  }

  private open(requestId?: string): void {
    this.openedAt = this.now();
    this.failures = 0;
    this.moveTo('open', requestId);
  }

  private moveTo(state: CircuitState, requestId?: string): void {
    if (state === this.state) return;
    this.state = state;
    this.options.onStateChange?.(state, requestId);
  }
}
