/** Who is calling, once a credential checked out. */
export type Principal =
  | {
      kind: 'api-key';
      /** Stable and unique: sessions are bound to it. */
      id: string;
      /** The key's name from the manifest (never the key). */
      name: string;
      servers: '*' | readonly string[];
    }
  | {
      kind: 'jwt';
      id: string;
      /** The token's subject. */
      name: string;
      roles: readonly string[];
      scopes: readonly string[];
    };
