import { HttpError } from './lib/errors.js';
import type { ServiceEnvironment } from './lib/environment.js';
import { requireEntitlement } from './lib/entitlement.js';
import { requireAdmin, requireCaller, rolesFromUserStore } from './lib/identity.js';
import { signedPlaybackUrl } from './lib/playback.js';
import type { ServiceDefinition } from './lib/service.js';
import { demoChannels, nowPlayingOf, scheduleOf, type Channel } from './data/catalog.js';
import { specPath } from '../gateway/src/upstreams.js';

type ChannelInput = Omit<Channel, 'id'>;

export function livetvService(env: ServiceEnvironment): ServiceDefinition {
  const currentRoles = rolesFromUserStore(env);
  const channels = new Map<string, Channel>(demoChannels().map((channel) => [channel.id, channel]));
  let nextChannelNumber = channels.size + 1;

  function channelOrNotFound(id: string): Channel {
    const channel = channels.get(id);
    if (!channel) throw new HttpError(404, 'Channel not found');
    return channel;
  }

  function assertNumberFree(number: number, exceptId?: string): void {
    for (const channel of channels.values()) {
      if (channel.number === number && channel.id !== exceptId) throw new HttpError(409, `Channel number ${number} is taken`);
    }
  }

  return {
    name: 'livetv',
    spec: specPath('livetv'),
    handlers: {
      channels: () => ({ body: [...channels.values()].sort((a, b) => a.number - b.number) }),

      channelsByIds({ query }) {
        const ids = [...new Set(query.ids as string[])];
        return { body: { items: ids.flatMap((id) => channels.get(id) ?? []) } };
      },

      channel: ({ params }) => ({ body: channelOrNotFound(params.id as string) }),

      channelSchedule: ({ params }) => ({ body: scheduleOf(channelOrNotFound(params.id as string).id, Date.now()) }),

      nowPlaying({ query }) {
        const nowMs = Date.now();
        const ids = [...new Set(query.channelIds as string[])].filter((id) => channels.has(id));
        return { body: { items: ids.map((channelId) => ({ channelId, program: nowPlayingOf(channelId, nowMs) })) } };
      },

      schedulesByChannelIds({ query }) {
        const nowMs = Date.now();
        const ids = [...new Set(query.channelIds as string[])].filter((id) => channels.has(id));
        return { body: { items: ids.map((channelId) => ({ channelId, programs: scheduleOf(channelId, nowMs) })) } };
      },

      async playChannel({ headers, params }) {
        const caller = requireCaller(headers);
        const channel = channelOrNotFound(params.id as string);
        await requireEntitlement(env, headers, `channel:${channel.id}`, 'channel');
        return { body: signedPlaybackUrl(`live/${channel.id}`, caller.id, env.playbackSigningKey) };
      },

      async adminCreateChannel({ headers, body }) {
        await requireAdmin(headers, currentRoles);
        const input = body as ChannelInput;
        assertNumberFree(input.number);
        const channel: Channel = { id: `c${nextChannelNumber++}`, ...input };
        channels.set(channel.id, channel);
        return { status: 201, body: channel };
      },

      async adminUpdateChannel({ headers, params, body }) {
        await requireAdmin(headers, currentRoles);
        const { id } = channelOrNotFound(params.id as string);
        const input = body as ChannelInput;
        assertNumberFree(input.number, id);
        const channel: Channel = { id, ...input };
        channels.set(id, channel);
        return { body: channel };
      },

      async adminDeleteChannel({ headers, params }) {
        await requireAdmin(headers, currentRoles);
        channels.delete(channelOrNotFound(params.id as string).id);
        return { status: 204 };
      },

      livetvHealth: () => ({ body: { status: 'ok', service: 'livetv' } }),
    },
  };
}
