import { open } from 'node:fs/promises';
import { MAX_MANIFEST_BYTES } from './load.js';

/**
 * Reads a manifest file's bytes, at most one byte past the limit: enough for the loader to refuse an
 * oversized file without this process ever holding all of it.
 */
export async function readManifestBytes(path: string): Promise<{ bytes: Buffer } | { unreadable: string }> {
  let handle;
  try {
    handle = await open(path, 'r');
    const buffer = Buffer.alloc(MAX_MANIFEST_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
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
