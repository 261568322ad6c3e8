/**
 * Several Gantry servers on one database all serve the API, so a client may know several URLs
 * and move to the next when its current one stops answering. This file holds the URL list
 * (parsing and validation) and the rule for which failures mean "try another server".
 */
import { TransportError } from './transport.ts';

/** The server list could not be understood; the message names where it came from (`what`). */
export class ServerListError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServerListError';
  }
}

/**
 * `'http://a,http://b'` or `['http://a', 'http://b']` (entries may themselves hold commas) →
 * normalised base URLs without trailing slashes, duplicates dropped, order kept. Throws
 * ServerListError for an empty list or an entry that is not an absolute http(s) URL.
 */
export function parseServerList(input: string | readonly string[], what = 'server'): string[] {
  const raw = (typeof input === 'string' ? [input] : [...input]).flatMap((s) => {
    if (typeof s !== 'string') throw new ServerListError(`${what} must be a URL or a list of URLs, got ${typeof s}`);
    return s.split(',');
  });
  const urls: string[] = [];
  for (const entry of raw.map((s) => s.trim())) {
    if (entry === '') continue;
    let u: URL;
    try {
      u = new URL(entry);
    } catch {
      throw new ServerListError(`${what}: '${entry}' is not a URL (expected e.g. http://127.0.0.1:8084)`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new ServerListError(`${what}: '${entry}' must be an http:// or https:// URL, not ${u.protocol}`);
    }
    if (u.search || u.hash) throw new ServerListError(`${what}: '${entry}' must be a base URL without ?query or #fragment`);
    const base = u.toString().replace(/\/+$/, '');
    if (!urls.includes(base)) urls.push(base);
  }
  if (urls.length === 0) throw new ServerListError(`${what} is empty: give at least one URL (several separated by commas)`);
  return urls;
}

/** Transport codes that say the server is gone or unreachable (not that the request was bad). */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'TIMEOUT']);

/** A failure after which another server may do better: the connection failed, or the server answered 503. */
export function isServerDown(err: unknown): boolean {
  if (err instanceof TransportError) return CONNECTION_CODES.has(err.code) || /socket hang up/i.test(err.message);
  return false;
}

/**
 * True when the request never left this machine's side of the connection, so sending it to
 * another server cannot apply it twice: the connection was refused (nothing was written).
 */
export function neverSent(err: unknown): boolean {
  return err instanceof TransportError && err.code === 'ECONNREFUSED';
}

/**
 * The client's servers and which one is current. `failedOver(from)` moves on only if `from`
 * is still current, so requests that fail together on one dead server switch once, not N times.
 */
export class ServerList {
  readonly urls: readonly string[];
  #current = 0;

  constructor(urls: readonly string[]) {
    if (urls.length === 0) throw new ServerListError('server is empty: give at least one URL');
    this.urls = urls;
  }

  get current(): string {
    return this.urls[this.#current]!;
  }

  /** Moves past `from` if it is still current; returns the new current URL, or null when nothing changed. */
  failedOver(from: string): string | null {
    if (this.urls.length < 2 || this.current !== from) return null;
    this.#current = (this.#current + 1) % this.urls.length;
    return this.current;
  }
}
