/**
 * Every key the gateway writes starts with this (one Redis may serve other things too). A module of its
 * own: the modules that name keys need not load the Redis client, which only SharedRedis does.
 */
export const KEY_PREFIX = 'gateway:';
