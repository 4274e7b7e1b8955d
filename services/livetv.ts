import type { operations } from '../shared/api/livetv.js';
import type { Channel } from '../shared/records.js';
import { contentId } from '../shared/upstreams.js';
import { demoChannels, nowPlayingOf, scheduleOf } from './data/catalog.js';
import { requireEntitlement } from './lib/entitlement.js';
import { foundOr404, HttpError } from './lib/errors.js';
import { requireAdmin, requireCaller, rolesFromUserStore } from './lib/identity.js';
import { signedPlaybackUrl } from './lib/playback.js';
import { defineService } from './lib/service.js';

interface LiveTvState {
  readonly channels: Map<string, Channel>;
  nextChannelNumber: number;
}

function assertNumberFree({ channels }: LiveTvState, number: number, exceptId?: string): void {
  for (const channel of channels.values()) {
    if (channel.number === number && channel.id !== exceptId) throw new HttpError(409, `Channel number ${number} is taken`);
  }
}

/** The asked channels that exist, each once, in the order asked. */
const knownChannels = ({ channels }: LiveTvState, ids: readonly string[]): string[] => [...new Set(ids)].filter((id) => channels.has(id));

export const livetvService = defineService<operations>()({
  name: 'livetv',
  state: (): LiveTvState => {
    const channels = new Map(demoChannels().map((channel) => [channel.id, channel]));
    return { channels, nextChannelNumber: channels.size + 1 };
  },
  handlers: {
    channels: (_request, { state }) => ({ body: [...state.channels.values()].sort((a, b) => a.number - b.number) }),

    channelsByIds: ({ query }, { state }) => ({ body: { items: [...new Set(query.ids)].flatMap((id) => state.channels.get(id) ?? []) } }),

    channel: ({ params }, { state }) => ({ body: foundOr404(state.channels, params.id, 'Channel') }),

    channelSchedule: ({ params }, { state }) => ({ body: scheduleOf(foundOr404(state.channels, params.id, 'Channel').id, Date.now()) }),

    nowPlaying({ query }, { state }) {
      const nowMs = Date.now();
      return { body: { items: knownChannels(state, query.channelIds).map((channelId) => ({ channelId, program: nowPlayingOf(channelId, nowMs) })) } };
    },

    schedulesByChannelIds({ query }, { state }) {
      const nowMs = Date.now();
      return { body: { items: knownChannels(state, query.channelIds).map((channelId) => ({ channelId, programs: scheduleOf(channelId, nowMs) })) } };
    },

    async playChannel({ headers, params }, { state, env }) {
      const caller = requireCaller(headers);
      const channel = foundOr404(state.channels, params.id, 'Channel');
      await requireEntitlement(env, headers, contentId('channel', channel.id), 'channel');
      return { body: signedPlaybackUrl(`live/${channel.id}`, caller.id, env.playbackSigningKey) };
    },

    async adminCreateChannel({ headers, body }, { state, env }) {
      await requireAdmin(headers, rolesFromUserStore(env));
      assertNumberFree(state, body.number);
      const channel: Channel = { id: `c${state.nextChannelNumber++}`, ...body };
      state.channels.set(channel.id, channel);
      return { status: 201, body: channel };
    },

    async adminUpdateChannel({ headers, params, body }, { state, env }) {
      await requireAdmin(headers, rolesFromUserStore(env));
      const { id } = foundOr404(state.channels, params.id, 'Channel');
      assertNumberFree(state, body.number, id);
      const channel: Channel = { id, ...body };
      state.channels.set(id, channel);
      return { body: channel };
    },

    async adminDeleteChannel({ headers, params }, { state, env }) {
      await requireAdmin(headers, rolesFromUserStore(env));
      state.channels.delete(foundOr404(state.channels, params.id, 'Channel').id);
      return { status: 204 };
    },
  },
});
