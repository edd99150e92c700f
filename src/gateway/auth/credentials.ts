import type { IncomingHttpHeaders } from 'node:http';

/**
 * The credential a request presents: `Authorization: Bearer …` or `X-API-Key: …`. Both at once, or a
 * malformed Authorization header, is refused rather than guessed at.
 */
export function presentedCredential(
  headers: IncomingHttpHeaders,
): { value: string } | { malformed: string } | undefined {
  const authorization = headers.authorization;
  const apiKey = headers['x-api-key'];
  if (Array.isArray(apiKey)) return { malformed: 'more than one X-API-Key header' };
  if (authorization !== undefined && apiKey !== undefined) {
    return { malformed: 'both Authorization and X-API-Key were sent; send one' };
  }
  if (apiKey !== undefined) return apiKey ? { value: apiKey } : { malformed: 'X-API-Key is empty' };
  if (authorization === undefined) return undefined;
  const match = /^Bearer +(\S+) *$/i.exec(authorization);
  return match ? { value: match[1]! } : { malformed: 'Authorization must be "Bearer <token>"' };
}
