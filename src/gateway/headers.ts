import type { IncomingHttpHeaders } from 'node:http';

/**
 * A request header's value, none when absent or empty. Node joins a repeated header into one string (only
 * Set-Cookie comes as a list), so the list case is typing only.
 */
export function headerText(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  const text = Array.isArray(value) ? value.join(', ') : value;
  return text === '' ? undefined : text;
}

/** The first value of a comma-separated header (a proxy chain appends its own); '' when absent. */
export function firstHeaderValue(headers: IncomingHttpHeaders, name: string): string {
  return (headerText(headers, name) ?? '').split(',')[0]!.trim();
}
