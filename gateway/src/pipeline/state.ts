/**
 * What the pipeline learns about a request, each entry set once, by the phase that owns it. Empty here:
 * each plugin declares the entries it owns next to itself, by augmenting this interface (as hono's
 * `ContextVariableMap`), so the pipeline imports nothing of the concerns built on it:
 *
 * ```ts
 * declare module '../pipeline/state.js' {
 *   interface RequestVariables {
 *     /** onRequest (request id): the client's sane X-Request-ID, or a new one. *\/
 *     readonly requestId: string;
 *   }
 * }
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging
export interface RequestVariables {}

type Key = keyof RequestVariables;

/**
 * Per-request state, typed: an entry is set once (setting it again is a bug: callees never write back)
 * and read only after its phase ran (reading it earlier is a bug too).
 */
export class RequestState {
  private readonly values: { -readonly [K in Key]?: RequestVariables[K] } = {};

  set<K extends Key>(key: K, value: RequestVariables[K]): void {
    if (this.values[key] !== undefined) throw new Error(`request state "${key}" is already set`);
    this.values[key] = value;
  }

  get<K extends Key>(key: K): RequestVariables[K] {
    const value = this.values[key];
    if (value === undefined) throw new Error(`request state "${key}" is not set yet`);
    return value as RequestVariables[K];
  }

  /** The entry if its phase has run (error rendering and metrics look at a request that may have stopped early). */
  peek<K extends Key>(key: K): RequestVariables[K] | undefined {
    return this.values[key];
  }
}
