import type { operations } from '../shared/api/livetv.js';
import type { Channel, Program } from '../shared/records.js';
import { demoChannels, nowPlayingOf, scheduleOf } from './data/catalog.js';
import { Cached, READ_AGAIN_MS } from './lib/cached.js';
import { announceChange } from './lib/changes.js';
import type { Queryable } from './lib/database.js';
import { sql } from './lib/sql.js';
import { found, HttpError } from './lib/errors.js';
import { playbackFor } from './lib/playback.js';
import { defineService } from './lib/service.js';

const CHANNEL = sql`id, name, number, free`;

/** The line-up, by number: small, read on every page, changed by admins now and then. */
interface LineUp {
  readonly channels: readonly Channel[];
  readonly byId: ReadonlyMap<string, Channel>;
}

async function readLineUp(db: Queryable): Promise<LineUp> {
  const channels = await db.rows<Channel>(sql`select ${CHANNEL} from livetv.channels order by number`);
  return { channels, byId: new Map(channels.map((channel) => [channel.id, channel])) };
}

const channel = async (lineUp: Cached<LineUp>, id: string): Promise<Channel> => found((await lineUp.get()).byId.get(id), 'Channel');

/** The asked channels that exist, each once, in the order asked. */
async function knownChannels(lineUp: Cached<LineUp>, ids: readonly string[]): Promise<Channel[]> {
  const { byId } = await lineUp.get();
  return [...new Set(ids)].flatMap((id) => byId.get(id) ?? []);
}

/** A channel number belongs to one channel at most: the database says so (its constraint), whatever the timing. */
async function numberFree<T>(number: number, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if ((error as { constraint?: string }).constraint === 'channels_number_taken') throw new HttpError(409, `Channel number ${number} is taken`, { cause: error });
    throw error;
  }
}

/** Adds a channel: its id comes from the order it was added in (c1, c2, …). */
const insertChannel = (db: Queryable, { name, number, free }: Omit<Channel, 'id'>) =>
  numberFree(number, () => db.one<Channel>(sql`insert into livetv.channels (name, number, free) values (${name}, ${number}, ${free}) returning ${CHANNEL}`));

/** What an answer about the programme on air may be kept for: 15 s at most, and never past the first programme's end. */
function onAirCacheControl(programs: readonly (Program | undefined)[], nowMs: number): Record<string, string> {
  const ends = programs.flatMap((program) => (program ? [Date.parse(program.end)] : []));
  const seconds = Math.max(0, Math.min(15, Math.floor((Math.min(...ends) - nowMs) / 1000)));
  return { 'cache-control': seconds > 0 ? `public, max-age=${seconds}` : 'no-store' };
}

export const livetvService = defineService<operations>()({
  name: 'livetv',
  database: {
    // In the line-up's order: c1, c2, … as the identity numbers them.
    async seed(tx) {
      for (const { id: _id, ...input } of demoChannels()) await insertChannel(tx, input);
    },
  },
  state: (_env, db) => ({ db, lineUp: new Cached(() => readLineUp(db), READ_AGAIN_MS) }),
  handlers: {
    channels: async (_request, { state: { lineUp } }) => ({ body: [...(await lineUp.get()).channels] }),
    channelsByIds: async ({ query }, { state: { lineUp } }) => ({ body: { items: await knownChannels(lineUp, query.ids) } }),
    channel: async ({ params }, { state: { lineUp } }) => ({ body: await channel(lineUp, params.id) }),
    async channelSchedule({ params }, { state: { lineUp }, env }) {
      const { id } = await channel(lineUp, params.id);
      const nowMs = Date.now();
      const programs = scheduleOf(id, nowMs, env.livetvSlotMs);
      return { body: programs, headers: onAirCacheControl([programs[0]], nowMs) };
    },

    async nowPlaying({ query }, { state: { lineUp }, env }) {
      const channels = await knownChannels(lineUp, query.channelIds);
      const nowMs = Date.now();
      const items = channels.map(({ id: channelId }) => ({ channelId, program: nowPlayingOf(channelId, nowMs, env.livetvSlotMs) }));
      return { body: { items }, headers: onAirCacheControl(items.map((item) => item.program), nowMs) };
    },

    async schedulesByChannelIds({ query }, { state: { lineUp }, env }) {
      const channels = await knownChannels(lineUp, query.channelIds);
      const nowMs = Date.now();
      const items = channels.map(({ id: channelId }) => ({ channelId, programs: scheduleOf(channelId, nowMs, env.livetvSlotMs) }));
      return { body: { items }, headers: onAirCacheControl(items.map((item) => item.programs[0]), nowMs) };
    },

    playChannel: async ({ headers, params }, { state: { lineUp }, env }) => ({ body: await playbackFor(env, headers, 'channel', () => channel(lineUp, params.id)) }),

    async adminCreateChannel({ body }, { state: { db, lineUp }, env, log }) {
      const created = await insertChannel(db, body);
      lineUp.invalidate();
      announceChange(env, log, 'adminCreateChannel', {});
      return { status: 201, body: created };
    },

    async adminUpdateChannel({ params, body: { name, number, free } }, { state: { db, lineUp }, env, log }) {
      const updated = found(await numberFree(number, () => db.row<Channel>(sql`update livetv.channels set name = ${name}, number = ${number}, free = ${free} where id = ${params.id} returning ${CHANNEL}`)), 'Channel');
      lineUp.invalidate();
      announceChange(env, log, 'adminUpdateChannel', { id: updated.id });
      return { body: updated };
    },

    async adminDeleteChannel({ params }, { state: { db, lineUp }, env, log }) {
      const { id } = found(await db.row<{ id: string }>(sql`delete from livetv.channels where id = ${params.id} returning id`), 'Channel');
      lineUp.invalidate();
      announceChange(env, log, 'adminDeleteChannel', { id });
      return { status: 204 };
    },
  },
});
