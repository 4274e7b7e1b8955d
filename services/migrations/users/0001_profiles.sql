-- The user store: one profile per account, under the id the authentication service gave it.
create table users.profiles (
  id text primary key,
  username text not null unique,
  email text not null,
  roles text[] not null,
  created_at timestamptz not null default now()
);
