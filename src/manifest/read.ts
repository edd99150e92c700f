import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { MAX_MANIFEST_BYTES } from './load.js';

/** What messages call standard input, read for the file name `-`. */
export const STDIN_NAME = '<stdin>';

type ReadResult = { bytes: Buffer } | { unreadable: string };

/**
 * Reads a manifest file's bytes, at most one byte past the limit: enough for the loader to refuse an
 * oversized file without this process ever holding all of it. Reads from the current position, never
 * at an offset, so a pipe (`<(…)`, /dev/stdin) reads as well as a file.
 */
export async function readManifestBytes(path: string): Promise<ReadResult> {
  let handle;
  try {
    handle = await open(path, 'r');
    const buffer = Buffer.alloc(MAX_MANIFEST_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return { bytes: buffer.subarray(0, length) };
  } catch (error) {
    return { unreadable: describeReadError(path, error as NodeJS.ErrnoException) };
  } finally {
    await handle?.close();
  }
}

/** Reads standard input (or another stream) as a manifest, bounded as a file is. */
export async function readStreamBytes(stream: Readable = process.stdin): Promise<ReadResult> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      length += chunk.length;
      if (length > MAX_MANIFEST_BYTES) break;
    }
  } catch (error) {
    return { unreadable: describeReadError(STDIN_NAME, error as NodeJS.ErrnoException) };
  }
  return { bytes: Buffer.concat(chunks).subarray(0, MAX_MANIFEST_BYTES + 1) };
}

function describeReadError(path: string, error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ENOENT':
      return `${path}: no such file`;
    case 'EACCES':
    case 'EPERM':
      return `${path}: permission denied`;
    case 'EISDIR':
      return `${path}: is a directory, not a manifest file`;
    default:
      return `${path}: cannot read (${error.code ?? error.message})`;
  }
}
