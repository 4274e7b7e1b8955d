/** Who the caller is, as a verified token says. */
export interface Identity {
  readonly sub: string;
  readonly roles: readonly string[];
  /** When the token stops being valid, in epoch milliseconds. */
  readonly expiresAtMs: number;
}

export function hasRole(identity: Identity | undefined, role: string): boolean {
  return identity?.roles.includes(role) ?? false;
}
