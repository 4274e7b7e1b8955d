import { readFileSync } from 'node:fs';

/** A secret setting given badly (both ways, or a file that cannot be read): the message names the variable and the file, never the secret. */
export class SecretFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretFileError';
  }
}

/**
 * The environment with each secret that is given as `NAME_FILE` (the Docker and Kubernetes secrets
 * convention) read from its file into `NAME`: the file's text without its trailing line break. Setting
 * both `NAME` and `NAME_FILE` is refused: which one wins would be a guess.
 */
export function withSecretFiles(env: NodeJS.ProcessEnv, names: Iterable<string>): NodeJS.ProcessEnv {
  let resolved: NodeJS.ProcessEnv | undefined;
  for (const name of names) {
    const file = env[`${name}_FILE`];
    if (file === undefined || file === '') continue;
    if (env[name] !== undefined && env[name] !== '') throw new SecretFileError(`${name} and ${name}_FILE are both set: set one`);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new SecretFileError(`${name}_FILE: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
    }
    resolved ??= { ...env };
    resolved[name] = text.replace(/\r?\n$/, '');
  }
  return resolved ?? env;
}
