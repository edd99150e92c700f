/** SDK clients for every target: HTTP (Streamable HTTP) or direct stdio to the fixture. */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

export type ClientSpec = { kind: 'http'; url: string } | { kind: 'stdio'; command: string; args: string[] };

export interface OpenClient {
  client: Client;
  /** The fixture's pid for a direct stdio client. */
  pid?: number;
  /** Ends the session politely (DELETE for HTTP), then closes the transport. Never throws. */
  close(): Promise<void>;
}

/** No call waits longer than this: every loop in the bench is bounded in time as well as count. */
export const CALL_TIMEOUT_MS = 30_000;

export async function openClient(spec: ClientSpec): Promise<OpenClient> {
  const client = new Client({ name: 'mcp-proxy-bench', version: '1.0.0' }, { capabilities: {} });
  if (spec.kind === 'stdio') {
    const transport = new StdioClientTransport({ command: spec.command, args: spec.args, stderr: 'ignore' });
    await client.connect(transport, { timeout: CALL_TIMEOUT_MS });
    return {
      client,
      pid: transport.pid ?? undefined,
      close: () => client.close().catch(() => {}),
    };
  }
  const transport = new StreamableHTTPClientTransport(new URL(spec.url));
  await client.connect(transport, { timeout: CALL_TIMEOUT_MS });
  return {
    client,
    close: async () => {
      await withTimeout(transport.terminateSession(), 5000).catch(() => {});
      await client.close().catch(() => {});
    },
  };
}

export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** One echo call; throws unless the text comes back whole. */
export async function echo(client: Client, text: string): Promise<void> {
  const result = await client.callTool({ name: 'echo', arguments: { text } }, undefined, {
    timeout: CALL_TIMEOUT_MS,
  });
  const content = result.content as { type: string; text?: string }[] | undefined;
  const back = content?.[0]?.text;
  if (result.isError || back === undefined || back.length !== text.length) {
    throw new Error(`echo came back wrong: ${JSON.stringify(result).slice(0, 200)}`);
  }
}

/** One line, short; an HTML error page (Express's) is reduced to its text. */
export function describeError(error: unknown): string {
  let text = error instanceof Error ? error.message : String(error);
  const pre = /<pre>([\s\S]*?)(<br>|<\/pre>)/i.exec(text);
  if (pre) text = text.slice(0, text.indexOf('<')) + pre[1];
  return text
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 160);
}
