-- Accounts' credentials: scrypt hashes and their salts, never a password. A registration's credential
-- is 'pending' until user management holds the profile: it reserves the username, and cannot log in
-- (a registration spans two services; services/auth.ts undoes one that fails halfway).
create table auth.credentials (
  user_id text primary key,
  username text not null unique,
  salt bytea not null,
  hash bytea not null,
  status text not null check (status in ('pending', 'active')),
  created_at timestamptz not null default now()
);
create index credentials_pending on auth.credentials (created_at) where status = 'pending';

-- New accounts' ids, after the demo accounts'.
create sequence auth.user_ids;

-- Refresh tokens, by their SHA-256: the table holds no token that works. An exchanged one stays, marked,
-- until it expires: presented again, it revokes its whole family (RFC 9700 4.14.2).
create table auth.refresh_tokens (
  token_hash bytea primary key,
  user_id text not null references auth.credentials (user_id) on delete cascade,
  family text not null,
  expires_at timestamptz not null,
  exchanged_at timestamptz
);
create index refresh_tokens_family on auth.refresh_tokens (family);
create index refresh_tokens_expiry on auth.refresh_tokens (expires_at);
