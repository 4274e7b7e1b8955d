import type { IncomingMessage, ServerResponse } from 'node:http';
import { RequestState } from './state.js';

/** One request and its response, with the state the phases build up. */
export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly state: RequestState;
  /** When the request arrived (`process.hrtime.bigint()`). */
  readonly started: bigint;
}

/** The raw path of a request, before any normalisation (for `instance` and own endpoints). */
export function rawPathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const queryStart = url.indexOf('?');
  return queryStart === -1 ? url : url.slice(0, queryStart);
}

/** The status a request ended with: 499 (as nginx logs it) when the client left before any answer. */
export function responseStatus(res: ServerResponse): number {
  // 101: a WebSocket's connection, answered by its handshake (written past the response).
  return res.headersSent || res.statusCode === 101 ? res.statusCode : 499;
}

/** A phase's answer that the request is done: no later phase runs. */
export const ANSWERED: unique symbol = Symbol('answered');

export type StepResult = typeof ANSWERED | undefined;
export type Step = (exchange: Exchange) => StepResult | Promise<StepResult>;

/**
 * The phases every request goes through, in order. A phase may answer the request itself (a
 * preflight, a probe, a 429) or throw a GatewayError; the face phase always answers.
 */
export const PHASES = ['onRequest', 'cors', 'ownEndpoints', 'route', 'authenticate', 'rateLimit', 'face'] as const;

export type PhaseName = (typeof PHASES)[number];

/**
 * One concern of the gateway: the steps it runs in the phases it owns, what it does when a response is
 * over (sent, failed or abandoned by the client), and how it closes what it opened (a connection, a
 * pool, a server) when the gateway stops — as fastify's onClose hooks.
 */
export interface GatewayPlugin {
  readonly name: string;
  readonly phases?: Partial<Record<PhaseName, Step>>;
  readonly onResponse?: (exchange: Exchange) => void;
  /**
   * The gateway stops taking requests (SIGTERM, after the drain): end what would hold a connection open
   * past the grace period (event streams, WebSockets), so that their clients go elsewhere.
   */
  readonly onClosing?: () => void;
  readonly onClose?: () => void | Promise<void>;
}

export interface Pipeline {
  /** `phase:plugin` for every step, in the order they run. */
  readonly steps: readonly string[];
  /** The plugins that close something, in the order close() runs them. */
  readonly closers: readonly string[];
  run(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** Runs every plugin's onClosing, in the order of the list. */
  closing(): void;
  /**
   * Runs every plugin's onClose, in reverse order of the list (what opened last closes first: the faces
   * before the upstream client they call), each after the one before has finished. One that fails does
   * not keep the others from closing; the first failure is thrown once all have run.
   */
  close(): Promise<void>;
}

function isPromise(value: StepResult | Promise<StepResult>): value is Promise<StepResult> {
  return typeof (value as Promise<StepResult> | undefined)?.then === 'function';
}

/** Composes the plugins' steps, phase by phase in PHASES order, plugins in the order given. */
export function createPipeline(plugins: readonly GatewayPlugin[], onError: (exchange: Exchange, error: unknown) => void): Pipeline {
  const steps = PHASES.flatMap((phase) =>
    plugins.flatMap((plugin) => {
      const run = plugin.phases?.[phase];
      return run ? [{ name: `${phase}:${plugin.name}`, run }] : [];
    }),
  );
  const responders = plugins.flatMap((plugin) => (plugin.onResponse ? [plugin.onResponse] : []));
  const closingHooks = plugins.flatMap((plugin) => (plugin.onClosing ? [plugin.onClosing] : []));
  const closers = plugins.flatMap((plugin) => (plugin.onClose ? [{ name: plugin.name, close: plugin.onClose }] : [])).reverse();
  let closing: Promise<void> | undefined;

  return {
    steps: steps.map((step) => step.name),
    closers: closers.map((closer) => closer.name),
    async run(req, res) {
      const exchange: Exchange = { req, res, state: new RequestState(), started: process.hrtime.bigint() };
      if (responders.length > 0) {
        // A response closes once: a plain listener, without the wrapper `once` makes for every request.
        res.on('close', () => {
          for (const respond of responders) respond(exchange);
        });
      }
      try {
        // An index, not an iterator: the loop is suspended at the face's await, and a suspended iterator is an object per request.
        for (let index = 0; index < steps.length; index++) {
          const result = (steps[index] as (typeof steps)[number]).run(exchange);
          if ((isPromise(result) ? await result : result) === ANSWERED) return;
        }
        throw new Error('no phase answered the request');
      } catch (error) {
        onError(exchange, error);
      }
    },
    closing() {
      for (const hook of closingHooks) hook();
    },
    close() {
      closing ??= (async () => {
        const failures: unknown[] = [];
        for (const closer of closers) {
          try {
            await closer.close();
          } catch (error) {
            failures.push(error);
          }
        }
        if (failures.length > 0) throw failures[0];
      })();
      return closing;
    },
  };
}
