/**
 * Deterministic demo data: the same catalogue, users and subscriptions on every start.
 * Nothing here depends on the clock except which slice of the endless schedule is shown.
 */

import type { Channel, Movie, Plan, Program, User } from '../../shared/records.js';

/** A demo account: its profile, its password and the plan it subscribes to. */
export interface DemoUser extends User {
  readonly email: string;
  readonly password: string;
  readonly planId?: string;
}

const GENRES = ['drama', 'comedy', 'action', 'thriller', 'documentary', 'sci-fi', 'animation', 'romance', 'horror', 'family'];
const ADJECTIVES = ['Silent', 'Crimson', 'Last', 'Hidden', 'Electric', 'Frozen', 'Golden', 'Broken', 'Endless', 'Midnight'];
const NOUNS = ['Harbor', 'Signal', 'Orchard', 'Frontier', 'Lighthouse'];

const MOVIE_COUNT = 50;

/** 50 movies; every fourth one (m1, m5, m9, ...) is free: 13 free movies. */
export function demoMovies(): Movie[] {
  return Array.from({ length: MOVIE_COUNT }, (_, i) => {
    const genres = [GENRES[i % GENRES.length] as string];
    if (i % 2 === 0) genres.push(GENRES[(i * 3 + 1) % GENRES.length] as string);
    return {
      id: `m${i + 1}`,
      title: `The ${ADJECTIVES[i % ADJECTIVES.length]} ${NOUNS[Math.floor(i / ADJECTIVES.length) % NOUNS.length]}`,
      year: 1975 + ((i * 7) % 50),
      genres: [...new Set(genres)],
      durationMinutes: 80 + ((i * 13) % 70),
      free: i % 4 === 0,
    };
  });
}

const CHANNEL_NAMES = [
  'News 24', 'Sports One', 'Cinema Classics', 'Kids Planet', 'Nature World', 'Music Hits', 'Comedy Central Stage',
  'History Vault', 'Science Now', 'Travel Stories', 'Food & Home', 'Drama Plus', 'Action Max', 'Retro TV',
  'World Cinema', 'Business Daily', 'Tech Today', 'Fashion Live', 'Auto Motors', 'Weather Watch',
  'Anime Zone', 'Docu Channel', 'Family Time', 'Late Night Laughs',
];

/** 24 channels numbered from 101; every fifth one (c1, c6, ...) is free. */
export function demoChannels(): Channel[] {
  return CHANNEL_NAMES.map((name, i) => ({ id: `c${i + 1}`, name, number: 101 + i, free: i % 5 === 0 }));
}

const PROGRAM_TITLES = [
  'Morning Briefing', 'Championship Highlights', 'Feature Presentation', 'Cartoon Hour', 'Wild Coasts',
  'Top 40 Countdown', 'Stand-up Showcase', 'Lost Empires', 'Inside the Lab', 'Hidden Cities',
  'Kitchen Heroes', 'The Long Night', 'Rapid Pursuit', 'Classic Reruns', 'Festival Selection', 'Market Close',
];

const SLOT_MINUTES = [30, 60, 90, 120];
const MINUTE_MS = 60_000;
export const SCHEDULE_HORIZON_MS = 24 * 60 * MINUTE_MS;

/** The slot length of a channel's programmes, fixed per channel id. */
function slotMinutesOf(channelId: string): number {
  let hash = 0;
  for (const char of channelId) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return SLOT_MINUTES[hash % SLOT_MINUTES.length] as number;
}

function programAt(channelId: string, slotStartMs: number, slotMs: number): Program {
  const slotIndex = Math.floor(slotStartMs / slotMs);
  let hash = slotIndex;
  for (const char of channelId) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return {
    // Minutes since the epoch (seconds for slots shorter than whole minutes: LIVETV_SLOT_SECONDS).
    id: `${channelId}-${slotMs % MINUTE_MS === 0 ? slotStartMs / MINUTE_MS : slotStartMs / 1000}`,
    title: PROGRAM_TITLES[hash % PROGRAM_TITLES.length] as string,
    start: new Date(slotStartMs).toISOString(),
    end: new Date(slotStartMs + slotMs).toISOString(),
  };
}

/**
 * The channel's programmes (slots of `slotMs`, by default the channel's own length) from the one on air at `nowMs` until one that ends at least 24 hours
 * later. Slots are aligned to the epoch, so the same instant always shows the same programme.
 */
export function scheduleOf(channelId: string, nowMs: number, slotMs = slotMinutesOf(channelId) * MINUTE_MS): Program[] {
  const programs: Program[] = [];
  for (let start = Math.floor(nowMs / slotMs) * slotMs; start < nowMs + SCHEDULE_HORIZON_MS; start += slotMs) {
    programs.push(programAt(channelId, start, slotMs));
  }
  return programs;
}

export function nowPlayingOf(channelId: string, nowMs: number, slotMs = slotMinutesOf(channelId) * MINUTE_MS): Program {
  return programAt(channelId, Math.floor(nowMs / slotMs) * slotMs, slotMs);
}

export const PLANS: readonly Plan[] = [
  { id: 'basic', name: 'Basic', description: 'Every movie on demand', monthlyPriceCents: 799, includes: ['movies'] },
  { id: 'premium', name: 'Premium', description: 'Every movie on demand and every live channel', monthlyPriceCents: 1499, includes: ['movies', 'channels'] },
];

export const DEMO_USERS: readonly DemoUser[] = [
  { id: '1', username: 'alice', password: 'alice-password', email: 'alice@example.com', roles: ['user'], planId: 'premium' },
  { id: '2', username: 'bob', password: 'bob-password', email: 'bob@example.com', roles: ['user'] },
  { id: '3', username: 'admin', password: 'admin-password', email: 'admin@example.com', roles: ['user', 'admin'], planId: 'premium' },
];

/** When the demo subscriptions started: fixed, so answers are the same on every start. */
export const DEMO_SUBSCRIPTION_START = '2026-01-01T00:00:00.000Z';
