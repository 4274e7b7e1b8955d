import { graphql } from './graphql.js';

/** The TV app's home screen: a page of movies with whether the viewer may play each. */
export const HomeScreen = graphql(`
  query HomeScreen($limit: Int, $genre: String) {
    movies(limit: $limit, genre: $genre) {
      total
      items {
        id
        title
        year
        genres
        entitlement {
          canPlay
          reason
        }
      }
    }
  }
`);

/** The live guide: every channel and what is on now. */
export const LiveGuide = graphql(`
  query LiveGuide {
    channels {
      id
      number
      name
      nowPlaying {
        title
        start
        end
      }
      entitlement {
        canPlay
      }
    }
  }
`);

export const PlayMovie = graphql(`
  query PlayMovie($id: ID!) {
    playMovie(id: $id) {
      url
      expiresAt
    }
  }
`);

export const Login = graphql(`
  mutation Login($username: String!, $password: String!) {
    login(username: $username, password: $password) {
      access_token
      expires_in
    }
  }
`);

/** The live guide kept current: what is on now on each channel, then each programme as it starts. */
export const OnAir = graphql(`
  subscription OnAir($channelIds: [ID!]!) {
    nowPlaying(channelIds: $channelIds) {
      channel {
        id
        number
        name
      }
      program {
        id
        title
        start
        end
      }
    }
  }
`);
