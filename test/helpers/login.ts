import { expect } from 'vitest';
import { graphql } from './graphql.js';

/**
 * A demo user's access token, from a real login through a gateway in front of the reference services
 * (the demo password is `<username>-password`): by the REST face, or by the GraphQL `login` mutation.
 */
export async function login(baseUrl: string, username: string, face: 'rest' | 'graphql' = 'rest'): Promise<string> {
  const password = `${username}-password`;
  if (face === 'graphql') {
    const answer = await graphql(baseUrl, 'mutation ($u: String!, $p: String!) { login(username: $u, password: $p) { access_token } }', { variables: { u: username, p: password } });
    expect(answer.errors, answer.text).toBeUndefined();
    return (answer.data?.login as { access_token: string }).access_token;
  }
  const response = await fetch(`${baseUrl}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  expect(response.status).toBe(200);
  return ((await response.json()) as { access_token: string }).access_token;
}
