import type { operations } from '../shared/api/livetv.js';
import type { Channel } from '../shared/records.js';
import { demoChannels, nowPlayingOf, scheduleOf } from './data/catalog.js';
import { Catalogue } from './lib/catalogue.js';
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

export const livetvService = defineService<operations>()({
  name: 'livetv',
  state: () => ({ channels: new Catalogue<Channel>(demoChannels(), 'c', 'Channel') }),
  handlers: {
    channels: (_request, { state }) => ({ body: state.channels.values().sort((a, b) => a.number - b.number) }),
    channelsByIds: ({ query }, { state }) => ({ body: { items: state.channels.many(query.ids) } }),
    channel: ({ params }, { state }) => ({ body: state.channels.get(params.id) }),
    channelSchedule: ({ params }, { state }) => ({ body: scheduleOf(state.channels.get(params.id).id, Date.now()) }),

    nowPlaying({ query }, { state }) {
      const nowMs = Date.now();
      return { body: { items: knownChannels(state.channels, query.channelIds).map((channelId) => ({ channelId, program: nowPlayingOf(channelId, nowMs) })) } };
    },

    schedulesByChannelIds({ query }, { state }) {
      const nowMs = Date.now();
      return { body: { items: knownChannels(state.channels, query.channelIds).map((channelId) => ({ channelId, programs: scheduleOf(channelId, nowMs) })) } };
    },

    playChannel: async ({ headers, params }, { state, env }) => ({ body: await playbackFor(env, headers, 'channel', () => state.channels.get(params.id)) }),

    adminCreateChannel({ body }, { state }) {
      assertNumberFree(state.channels, body.number);
      return { status: 201, body: state.channels.add(body) };
    },

    adminUpdateChannel({ params, body }, { state }) {
      assertNumberFree(state.channels, body.number, state.channels.get(params.id).id);
      return { body: state.channels.replace(params.id, body) };
    },

    adminDeleteChannel({ params }, { state }) {
      state.channels.remove(params.id);
      return { status: 204 };
    },
  },
});
