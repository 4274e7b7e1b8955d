import type { operations } from '../shared/api/livetv.js';
import type { Channel, Program } from '../shared/records.js';
import { demoChannels, nowPlayingOf, scheduleOf } from './data/catalog.js';
import { Catalogue } from './lib/catalogue.js';
import { announceChange } from './lib/changes.js';
import { HttpError } from './lib/errors.js';
import { playbackFor } from './lib/playback.js';
import { defineService } from './lib/service.js';

type Channels = Catalogue<Channel>;

/** A channel number belongs to one channel at most. */
function assertNumberFree(channels: Channels, number: number, exceptId?: string): void {
  if (channels.values().some((channel) => channel.number === number && channel.id !== exceptId)) throw new HttpError(409, `Channel number ${number} is taken`);
}

/** The asked channels that exist, each once, in the order asked. */
const knownChannels = (channels: Channels, ids: readonly string[]): string[] => channels.many(ids).map((channel) => channel.id);

/** What an answer about the programme on air may be kept for: 15 s at most, and never past the first programme's end. */
function onAirCacheControl(programs: readonly (Program | undefined)[], nowMs: number): Record<string, string> {
  const ends = programs.flatMap((program) => (program ? [Date.parse(program.end)] : []));
  const seconds = Math.max(0, Math.min(15, Math.floor((Math.min(...ends) - nowMs) / 1000)));
  return { 'cache-control': seconds > 0 ? `public, max-age=${seconds}` : 'no-store' };
}

export const livetvService = defineService<operations>()({
  name: 'livetv',
  state: () => ({ channels: new Catalogue<Channel>(demoChannels(), 'c', 'Channel') }),
  handlers: {
    channels: (_request, { state }) => ({ body: state.channels.values().sort((a, b) => a.number - b.number) }),
    channelsByIds: ({ query }, { state }) => ({ body: { items: state.channels.many(query.ids) } }),
    channel: ({ params }, { state }) => ({ body: state.channels.get(params.id) }),
    channelSchedule({ params }, { state, env }) {
      const nowMs = Date.now();
      const programs = scheduleOf(state.channels.get(params.id).id, nowMs, env.livetvSlotMs);
      return { body: programs, headers: onAirCacheControl([programs[0]], nowMs) };
    },

    nowPlaying({ query }, { state, env }) {
      const nowMs = Date.now();
      const items = knownChannels(state.channels, query.channelIds).map((channelId) => ({ channelId, program: nowPlayingOf(channelId, nowMs, env.livetvSlotMs) }));
      return { body: { items }, headers: onAirCacheControl(items.map((item) => item.program), nowMs) };
    },

    schedulesByChannelIds({ query }, { state, env }) {
      const nowMs = Date.now();
      const items = knownChannels(state.channels, query.channelIds).map((channelId) => ({ channelId, programs: scheduleOf(channelId, nowMs, env.livetvSlotMs) }));
      return { body: { items }, headers: onAirCacheControl(items.map((item) => item.programs[0]), nowMs) };
    },

    playChannel: async ({ headers, params }, { state, env }) => ({ body: await playbackFor(env, headers, 'channel', () => state.channels.get(params.id)) }),

    adminCreateChannel({ body }, { state, env, log }) {
      assertNumberFree(state.channels, body.number);
      const channel = state.channels.add(body);
      announceChange(env, log, 'adminCreateChannel', {});
      return { status: 201, body: channel };
    },

    adminUpdateChannel({ params, body }, { state, env, log }) {
      assertNumberFree(state.channels, body.number, state.channels.get(params.id).id);
      const channel = state.channels.replace(params.id, body);
      announceChange(env, log, 'adminUpdateChannel', { id: channel.id });
      return { body: channel };
    },

    adminDeleteChannel({ params }, { state, env, log }) {
      const { id } = state.channels.get(params.id);
      state.channels.remove(id);
      announceChange(env, log, 'adminDeleteChannel', { id });
      return { status: 204 };
    },
  },
});
